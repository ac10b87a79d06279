"""Install the external tools the benchmark drives, from Debian, when they are missing."""

from __future__ import annotations

import os
import shutil
import subprocess

#: executable -> Debian package that provides it
TOOLS = {"skopeo": "skopeo", "docker-registry": "docker-registry", "curl": "curl"}


class MissingTool(RuntimeError):
    """A tool is missing and cannot be installed from here."""


def ensure_tools() -> None:
    """Install missing tools with apt-get (as root); otherwise say exactly what to install."""
    missing = sorted({package for tool, package in TOOLS.items() if shutil.which(tool) is None})
    if not missing:
        return
    command = ["apt-get", "install", "-y", "-qq", *missing]
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise MissingTool(f"the benchmark needs {', '.join(missing)}: run `sudo {' '.join(command)}`")
    print(f"Installing {', '.join(missing)} with apt-get ...", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    # On a machine with systemd, docker-registry's postinst also starts a system registry on
    # :5000; the benchmark never uses it and starts its own with its own config.
    subprocess.run(command, check=True, env=env)
    still = [tool for tool in TOOLS if shutil.which(tool) is None]
    if still:
        raise MissingTool(f"apt-get did not provide {', '.join(still)}")
