"""tunectl's PAI-DLC provider and its API emulator."""

from tunectl_dlc.provider import DlcProvider

__all__ = ["DlcProvider"]
