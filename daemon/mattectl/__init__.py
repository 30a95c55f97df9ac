"""mattectl: a hotfolder daemon that cuts people out of studio photos."""

__version__ = "0.1.0"
