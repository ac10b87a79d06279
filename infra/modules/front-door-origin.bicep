// One region's function app as an origin of the Front Door origin group (front-door.bicep).

param profileName string
param originGroupName string

@description('Name of the origin: the region.')
param name string

@description('Default host name of the region\'s function app.')
param hostName string

resource profile 'Microsoft.Cdn/profiles@2024-02-01' existing = {
  name: profileName
}

resource originGroup 'Microsoft.Cdn/profiles/originGroups@2024-02-01' existing = {
  parent: profile
  name: originGroupName
}

// App Service routes by Host, so the origin receives its own host name; the client's stays in
// X-Forwarded-Host, and tokens name the Front Door host through REGISTRY_LOGIN_SERVER.
resource origin 'Microsoft.Cdn/profiles/originGroups/origins@2024-02-01' = {
  parent: originGroup
  name: name
  properties: {
    hostName: hostName
    originHostHeader: hostName
    httpPort: 80
    httpsPort: 443
    priority: 1
    weight: 1000
    enabledState: 'Enabled'
    enforceCertificateNameCheck: true
  }
}
