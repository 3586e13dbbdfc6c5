"""Files of a Debian package without installing it: `apt-get download` + `dpkg-deb -x`.

For packages whose dependencies we do not want (r-cran-janeaustenr would pull in R): the
.deb is fetched into a cache folder and unpacked there, once.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

DEFAULT_CACHE = Path("data/raw/debian")


def unpacked(package: str, cache: Path = DEFAULT_CACHE) -> Path:
    """The root of `package`'s unpacked files under `cache`, downloading the .deb if needed."""
    root = cache / package
    if (root / ".unpacked").exists():
        return root
    for tool in ("apt-get", "dpkg-deb"):
        if shutil.which(tool) is None:
            raise FileNotFoundError(f"{tool} is missing: {package} comes from Debian's archive")
    cache.mkdir(parents=True, exist_ok=True)
    debs = sorted(cache.glob(f"{package}_*.deb"))
    if not debs:
        subprocess.run(["apt-get", "download", "-q", package], cwd=cache, check=True)
        debs = sorted(cache.glob(f"{package}_*.deb"))
    if not debs:
        raise FileNotFoundError(f"apt-get download {package} left no .deb in {cache}")
    tmp = cache / f".{package}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    subprocess.run(["dpkg-deb", "-x", str(debs[-1]), str(tmp)], check=True)
    (tmp / ".unpacked").write_text(debs[-1].name + "\n", encoding="utf-8")
    shutil.rmtree(root, ignore_errors=True)
    tmp.rename(root)  # all or nothing: an interrupted unpack is redone
    return root
