"""User-requested downloads (never called by tests or evaluations implicitly)."""

from __future__ import annotations

import hashlib
import urllib.request
from pathlib import Path

from advbench.core.errors import DownloadError


def fetch(url: str, dest: Path, md5: str | None = None) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(dest.suffix + ".part")
    try:
        with urllib.request.urlopen(url, timeout=60) as response, open(tmp, "wb") as out:
            while chunk := response.read(1 << 20):
                out.write(chunk)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise DownloadError(f"download of {url} failed ({exc}); are you online?") from None
    if md5 is not None and hashlib.md5(tmp.read_bytes()).hexdigest() != md5:
        tmp.unlink(missing_ok=True)
        raise DownloadError(f"download of {url} has the wrong checksum")
    tmp.replace(dest)
    return dest
