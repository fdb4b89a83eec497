"""Who may see a run: its owner, anyone with its share link, everyone when it is public or the server is a gallery.

No Streamlit here. A run folder's ``access.json`` holds the owner's key (a hash of the browser's secret, never the
secret), whether the run is public (a bundled sample image: nobody's private photo) and, once the owner asks for
one, a share token (128 bits or more, URL-safe). A folder without the file (command-line runs, runs from before
owners existed) belongs to nobody: only a gallery server (``DIP_PUBLIC_RUNS=1``) lists it.
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Optional

ACCESS_FILE = "access.json"
SHARE_TOKEN = re.compile(r"^[A-Za-z0-9_-]{22,64}$")  # secrets.token_urlsafe(24) gives 32 characters


@dataclass(frozen=True)
class Access:
    owner: str = ""
    public: bool = False
    share: Optional[str] = None


def read_access(folder: Path) -> Access:
    """The folder's access record; a missing or unreadable one gives an ownerless, private record."""
    try:
        data = json.loads((Path(folder) / ACCESS_FILE).read_text())
    except (OSError, ValueError):
        return Access()
    if not isinstance(data, dict):
        return Access()
    share = data.get("share")
    return Access(
        owner=str(data.get("owner") or ""),
        public=data.get("public") is True,
        share=share if isinstance(share, str) and SHARE_TOKEN.match(share) else None,
    )


def write_access(folder: Path, access: Access) -> None:
    path = Path(folder) / ACCESS_FILE
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(asdict(access)) + "\n")
    tmp.replace(path)  # atomic: a reader never sees half a record


def may_view(access: Access, viewer: str, *, gallery: bool = False, share: Optional[str] = None) -> bool:
    """Whether ``viewer`` (an owner key) may see a run with this record (``share``: a token from a link)."""
    if gallery or access.public or (access.owner and secrets.compare_digest(access.owner, viewer)):
        return True
    return bool(share and access.share and secrets.compare_digest(share, access.share))


def share_token(folder: Path) -> str:
    """The run's share token, made on the first call (the owner asked for a link)."""
    access = read_access(folder)
    if access.share:
        return access.share
    token = secrets.token_urlsafe(24)
    write_access(folder, replace(access, share=token))
    return token


def find_shared(runs_dir: Path, token: Optional[str]) -> Optional[str]:
    """The id of the run shared under ``token``, or None (also for a malformed token)."""
    if not token or not SHARE_TOKEN.match(token):
        return None
    root = Path(runs_dir)
    if not root.is_dir():
        return None
    for folder in root.iterdir():
        if folder.is_dir() and not folder.name.startswith("."):
            share = read_access(folder).share
            if share and secrets.compare_digest(share, token):
                return folder.name
    return None
