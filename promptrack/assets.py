"""Test and notebook assets: where they are looked for, and how they are downloaded with a checksum.

The tests and notebooks need real data that the repository does not hold: the YOLOX-Nano ONNX model
(a pretrained COCO detector), the SAM 2 bedroom clip and four DAVIS 2016 sequences with their masks.
Each comes from its public origin (``ASSETS`` below names it, with its licence) and is checked
against a sha256 before it takes its final name. An assets folder has one layout::

    models/yolox_nano.onnx
    videos/bedroom.mp4
    davis2016/JPEGImages/480p/<sequence>/00000.jpg ...
    davis2016/Annotations/480p/<sequence>/00000.png ...

Folders are searched in order (:func:`search_dirs`): the download folder (``$PROMPTRACK_ASSETS``,
else ``~/.cache/promptrack/assets``), then ``../shared/assets`` beside the checkout.

    python -m promptrack.assets            # download what the download folder lacks (make assets)
    python -m promptrack.assets --list     # each asset: origin, licence, where it is found
    python -m promptrack.assets --where yolox-nano   # the folder that holds it (exit 2 if none)

Example:
    >>> from promptrack.assets import ASSETS
    >>> sorted(ASSETS)
    ['bedroom', 'davis2016', 'yolox-nano']
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Protocol

from promptrack.pipeline.errors import PromptrackError

# This file is promptrack/assets.py in a checkout; ../shared/assets is read beside the checkout.
CHECKOUT = Path(__file__).resolve().parent.parent
CHUNK = 1 << 20


class AssetError(PromptrackError):
    """An asset is missing, cannot be downloaded, or its download does not match its checksum."""


def download_dir() -> Path:
    """Where ``python -m promptrack.assets`` writes: ``$PROMPTRACK_ASSETS``, else the user's cache."""
    if os.environ.get("PROMPTRACK_ASSETS"):
        return Path(os.environ["PROMPTRACK_ASSETS"]).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "promptrack" / "assets"


def search_dirs() -> list[Path]:
    """The folders looked in, first match wins: the download folder, then ``../shared/assets``."""
    return [download_dir(), CHECKOUT.parent / "shared" / "assets"]


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def tree_sha256(folder: Path) -> str:
    """One checksum for a folder: sha256 of its files' sorted ``relative/path<TAB>sha256`` lines."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(f"{path.relative_to(folder).as_posix()}\t{file_sha256(path)}\n".encode())
    return digest.hexdigest()


class Asset(Protocol):
    """What an entry of ``ASSETS`` declares and does."""

    name: str
    url: str
    licence: str
    origin: str

    def paths(self) -> tuple[str, ...]:
        """Paths (files or folders) it puts in an assets folder."""

    def check(self, folder: Path) -> list[str]:
        """The paths that are missing or do not match their checksum in `folder` ([] when complete)."""

    def install(self, download: Path, folder: Path) -> None:
        """Move what `download` (the fetched file) holds into `folder`, checked, or raise AssetError."""


@dataclass(frozen=True)
class FileAsset:
    """One file, downloaded as it is."""

    name: str
    path: str
    url: str
    sha256: str
    size: int
    licence: str
    origin: str

    def paths(self) -> tuple[str, ...]:
        return (self.path,)

    def check(self, folder: Path) -> list[str]:
        target = folder / self.path
        return [] if target.is_file() and file_sha256(target) == self.sha256 else [self.path]

    def install(self, download: Path, folder: Path) -> None:
        got = file_sha256(download)
        if got != self.sha256:
            raise AssetError(f"assets: {self.name}: the download's sha256 is {got}, expected {self.sha256}: "
                             f"not kept (check the URL or mirror, then run python -m promptrack.assets again)")
        target = folder / self.path
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(download, target)  # same folder: the final name appears whole or not at all


@dataclass(frozen=True)
class ZipFolders:
    """Folders taken out of a zip archive; each checked with :func:`tree_sha256`.

    The archive's members are matched by their path's tail, so a top folder inside the archive
    (``DAVIS/JPEGImages/...``) does not matter.
    """

    name: str
    prefix: str                 # where the folders go in an assets folder
    folders: dict[str, str]     # folder inside the archive -> its tree sha256
    url: str
    size: int
    licence: str
    origin: str

    def paths(self) -> tuple[str, ...]:
        return tuple(f"{self.prefix}/{folder}" for folder in self.folders)

    def check(self, folder: Path) -> list[str]:
        return [path for path, expected in zip(self.paths(), self.folders.values())
                if not (folder / path).is_dir() or tree_sha256(folder / path) != expected]

    def install(self, download: Path, folder: Path) -> None:
        lacking = set(self.check(folder))
        wanted = {inner: path for inner, path in zip(self.folders, self.paths()) if path in lacking}
        with tempfile.TemporaryDirectory(dir=folder, prefix=f".{self.name}-") as staging, \
                zipfile.ZipFile(download) as archive:
            staging = Path(staging)
            for member in archive.infolist():
                name = "/" + member.filename
                for inner in wanted:
                    at = name.find(f"/{inner}/")
                    if at >= 0 and not member.is_dir():
                        rel = name[at + 1:]
                        if ".." in rel.split("/"):  # a member may not climb out of the staging folder
                            raise AssetError(f"assets: {self.name}: the archive's member {member.filename} "
                                             f"is not a plain path: not kept")
                        out = staging / rel
                        out.parent.mkdir(parents=True, exist_ok=True)
                        with archive.open(member) as src, open(out, "wb") as dst:
                            shutil.copyfileobj(src, dst, CHUNK)
            for inner, path in wanted.items():
                got_folder = staging / inner
                if not got_folder.is_dir():
                    raise AssetError(f"assets: {self.name}: the archive from {self.url} holds no {inner}/: "
                                     f"not kept (check the URL or mirror)")
                got = tree_sha256(got_folder)
                if got != self.folders[inner]:
                    raise AssetError(f"assets: {self.name}: {inner} from the archive has sha256 {got}, expected "
                                     f"{self.folders[inner]}: not kept (check the URL or mirror)")
            for inner, path in wanted.items():  # all checked: move each into place
                target = folder / path
                target.parent.mkdir(parents=True, exist_ok=True)
                if target.exists():
                    shutil.rmtree(target)
                os.replace(staging / inner, target)


_SAM2_COMMIT = "2b90b9f5ceec907a1c18123530e92e794ad901a4"
_DAVIS_SEQUENCES = {  # sequence -> (frames' tree sha256, masks' tree sha256)
    "bus": ("cf858799a56eabcd43c3494256eb7deb96a949492d5ba2ac7e7069f9db99a03c",
            "b9b7fd5afad182c70e79565acb8d1c6ea62f37ea4ee57883e98263636606696c"),
    "car-roundabout": ("bea6d085158a52d0b357705a813040acbd9f9956d34150352a9f77e8ecc7caa9",
                       "c961aaa5d939a1f6eb1312f1208a5a423ea6a9b28c9a8a95ab218e12ccc202da"),
    "dog": ("25b812cb560b7fbe5e344abb9182be88ee258b17cc34552a7d6c20359cc7d8d6",
            "16de7c2dc5dddf2d2180ba48a36ef63144dd9c65b04d0c4463307f0a99c26bae"),
    "stroller": ("526400c6a96b5bbb212965779d35a0cebd072f409faec325d77381bf5a8d7fcb",
                 "8dfe5a3b507da89abb47a23a6819676f2bda3d25c6f9cfa248bffdd4ca0a2da9"),
}

# The one table of assets: the README's "Test and notebook assets" section describes the same entries.
ASSETS: dict[str, Asset] = {asset.name: asset for asset in (
    FileAsset(
        name="yolox-nano", path="models/yolox_nano.onnx",
        url="https://github.com/Megvii-BaseDetection/YOLOX/releases/download/0.1.1rc0/yolox_nano.onnx",
        sha256="e8af074932d4ed7e232278e3055cefcdea3edf178874a3694ae292649fb464dd", size=3_678_356,
        licence="Apache-2.0", origin="YOLOX release 0.1.1rc0 (Megvii-BaseDetection/YOLOX)"),
    FileAsset(
        name="bedroom", path="videos/bedroom.mp4",
        url=f"https://raw.githubusercontent.com/facebookresearch/sam2/{_SAM2_COMMIT}/notebooks/videos/bedroom.mp4",
        sha256="1be76d5d19b066e8ad7c565d88a98e11a8f8d456a707508a7aa35390def70e30", size=2_380_401,
        licence="Apache-2.0", origin="SAM 2 repository (facebookresearch/sam2), notebooks/videos/bedroom.mp4"),
    ZipFolders(
        name="davis2016", prefix="davis2016",
        folders={f"{kind}/480p/{seq}": digests[i] for seq, digests in _DAVIS_SEQUENCES.items()
                 for i, kind in enumerate(("JPEGImages", "Annotations"))},
        url="https://graphics.ethz.ch/Downloads/Data/Davis/DAVIS-data.zip", size=1_900_000_000,
        licence="CC BY-NC 4.0 (non-commercial)",
        origin="DAVIS 2016 (Perazzi et al., CVPR 2016), DAVIS-data.zip: 4 sequences at 480p are kept"),
)}


def _names(names: Iterable[str] | None) -> list[str]:
    names = list(names or ASSETS)
    unknown = [n for n in names if n not in ASSETS]
    if unknown:
        raise AssetError(f"assets: unknown asset {', '.join(unknown)} (known: {', '.join(ASSETS)})")
    return names


def locate(*names: str) -> Path:
    """The first folder of :func:`search_dirs` that holds every named asset (all when none is named).

    Presence only (the checksum is checked when downloading):

    >>> locate("no-such-asset")
    Traceback (most recent call last):
    ...
    promptrack.assets.AssetError: assets: unknown asset no-such-asset (known: yolox-nano, bedroom, davis2016)
    """
    wanted = [ASSETS[n] for n in _names(names)]
    for folder in search_dirs():
        if all((folder / path).exists() for asset in wanted for path in asset.paths()):
            return folder
    where = " or ".join(str(folder) for folder in search_dirs())
    raise AssetError(f"assets {', '.join(a.name for a in wanted)} not found in {where}: "
                     f"run `python -m promptrack.assets` (or make assets) to download them")


def source_url(asset: Asset, mirror: str | None = None) -> str:
    """The asset's URL, or the file of the same name under `mirror` (a base URL, e.g. file:///srv/assets)."""
    if not mirror:
        return asset.url
    return mirror.rstrip("/") + "/" + Path(urllib.parse.urlparse(asset.url).path).name


def _fetch(url: str, into: Path, name: str) -> None:
    try:
        with urllib.request.urlopen(url, timeout=60) as response, open(into, "wb") as out:
            shutil.copyfileobj(response, out, CHUNK)
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", None) or exc.strerror or exc
        raise AssetError(f"assets: {name}: cannot download {url}: {reason} (offline? see README, "
                         f"'Test and notebook assets', to place the files by hand)") from None


def download(names: Iterable[str] | None = None, folder: Path | None = None, mirror: str | None = None,
             say=print) -> list[str]:
    """Download each named asset that `folder` lacks (default: :func:`download_dir`); returns the names fetched.

    What is present with the right checksum is skipped, so a second run (or one after an interrupted
    run) fetches only what is missing. A download lands in a temporary file beside its target and
    takes its final name only after its checksum matched: a failed or interrupted run leaves no
    file under a final name.
    """
    folder = Path(folder or download_dir())
    folder.mkdir(parents=True, exist_ok=True)
    fetched = []
    for name in _names(names):
        asset = ASSETS[name]
        if not asset.check(folder):
            say(f"assets: {name}: present in {folder}")
            continue
        url = source_url(asset, mirror)
        say(f"assets: {name}: downloading {url} (~{asset.size / 1e6:,.1f} MB, {asset.licence})")
        with tempfile.TemporaryDirectory(dir=folder, prefix=f".{name}-download-") as tmp:
            part = Path(tmp) / Path(urllib.parse.urlparse(url).path).name
            _fetch(url, part, name)
            asset.install(part, folder)
        fetched.append(name)
        say(f"assets: {name}: ok ({', '.join(asset.paths())})")
    return fetched


def _list(say=print) -> None:
    for name, asset in ASSETS.items():
        try:
            where = str(locate(name))
        except AssetError:
            where = "not found"
        say(f"{name}: {asset.origin}; licence {asset.licence}; {asset.url}; found: {where}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m promptrack.assets",
        description="Download the test and notebook assets from their public origins, each checked "
                    "against its sha256.")
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"assets to fetch (default: all: {', '.join(ASSETS)})")
    parser.add_argument("--dir", type=Path, help="download folder (default: $PROMPTRACK_ASSETS or "
                                                 "~/.cache/promptrack/assets)")
    parser.add_argument("--mirror", default=os.environ.get("PROMPTRACK_ASSETS_MIRROR"),
                        help="base URL holding the same file names (default: $PROMPTRACK_ASSETS_MIRROR)")
    parser.add_argument("--list", action="store_true", help="list the assets, their licences and where they are")
    parser.add_argument("--where", metavar="NAME", help="print the folder that holds NAME (exit 2 if none)")
    args = parser.parse_args(argv)
    try:
        if args.list:
            _list()
        elif args.where:
            print(locate(args.where))
        else:
            download(args.names, args.dir, args.mirror)
    except AssetError as exc:
        print(exc, file=sys.stderr)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
