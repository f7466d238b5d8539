"""The daemon layer: YAML config (config.py), built-in services (services/), admin endpoint,
logging setup. Kept empty on purpose: importing ``reactorsvc.daemon`` pulls in nothing (no YAML,
no sockets); import the submodule you need.
"""
