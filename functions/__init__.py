"""Azure Functions triggers: the only code that imports ``azure.functions``. Each is thin: it turns
its input into plain values and calls a plain function of ``shared``."""
