"""promptrack.assets against a local file:// mirror (no network): the real table's checksums, a
mismatch that keeps nothing, a second run that skips what is present, and the lookup order."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from promptrack import assets as A

DAVIS_ZIP = "DAVIS-data.zip"


@pytest.fixture(scope="module")
def mirror(tmp_path_factory, assets) -> Path:
    """A mirror of the YOLOX and DAVIS origins built from the shared assets: the ONNX file as it is,
    and a zip with the public archive's layout (a top folder, then JPEGImages/480p/<seq>/...)."""
    folder = tmp_path_factory.mktemp("mirror")
    (folder / "yolox_nano.onnx").write_bytes((assets / "models" / "yolox_nano.onnx").read_bytes())
    with zipfile.ZipFile(folder / DAVIS_ZIP, "w", zipfile.ZIP_STORED) as archive:
        for path in sorted((assets / "davis2016").rglob("*")):
            if path.is_file() and "480p" in path.parts:
                archive.write(path, "DAVIS/" + path.relative_to(assets / "davis2016").as_posix())
        # a sequence the project does not use: it must not be extracted
        archive.writestr("DAVIS/JPEGImages/480p/dog-agility/00000.jpg", b"other")
    return folder


def file_url(folder: Path) -> str:
    return folder.resolve().as_uri()


def listing(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))


def test_good_download_is_checked_and_lands_in_the_layout(mirror, tmp_path):
    target = tmp_path / "dl"
    messages = []
    fetched = A.download(["yolox-nano", "davis2016"], target, file_url(mirror), say=messages.append)
    assert fetched == ["yolox-nano", "davis2016"]
    assert A.ASSETS["yolox-nano"].check(target) == [] and A.ASSETS["davis2016"].check(target) == []
    assert len(list((target / "davis2016/JPEGImages/480p/dog").glob("*.jpg"))) == 60
    assert not (target / "davis2016/JPEGImages/480p/dog-agility").exists()
    # nothing else: no temporary file or folder is left beside the assets
    assert not [p for p in listing(target) if Path(p).name.startswith(".")]
    assert any("downloading file://" in m for m in messages)


def test_checksum_mismatch_is_one_line_and_keeps_nothing(mirror, tmp_path, assets):
    bad = tmp_path / "bad"
    bad.mkdir()
    onnx = (mirror / "yolox_nano.onnx").read_bytes()
    (bad / "yolox_nano.onnx").write_bytes(onnx[:-10] + b"0123456789")  # same size, other bytes
    target = tmp_path / "dl"
    result = subprocess.run([sys.executable, "-m", "promptrack.assets", "yolox-nano", "--dir", str(target),
                             "--mirror", file_url(bad)], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "sha256" in lines[0] and A.ASSETS["yolox-nano"].sha256 in lines[0] and "not kept" in lines[0]
    assert listing(target) == []  # no final name, no partial file

    # a damaged sequence inside the archive: the whole asset is refused, no folder appears
    with zipfile.ZipFile(bad / DAVIS_ZIP, "w") as archive:
        with zipfile.ZipFile(mirror / DAVIS_ZIP) as good:
            for member in good.infolist():
                data = good.read(member)
                archive.writestr(member, b"x" + data if member.filename.endswith("dog/00030.png") else data)
    with pytest.raises(A.AssetError, match=r"Annotations/480p/dog .*expected.*not kept"):
        A.download(["davis2016"], target, file_url(bad), say=lambda _: None)
    assert listing(target) == []


def test_second_run_skips_what_is_present_and_fetches_only_what_is_missing(mirror, tmp_path):
    target = tmp_path / "dl"
    A.download(["yolox-nano", "davis2016"], target, file_url(mirror), say=lambda _: None)
    gone = tmp_path / "nothing-here"  # a mirror that holds nothing: a fetch would fail
    messages = []
    assert A.download(["yolox-nano", "davis2016"], target, file_url(gone), say=messages.append) == []
    assert messages == [f"assets: yolox-nano: present in {target}", f"assets: davis2016: present in {target}"]

    # a damaged file and a missing sequence: only those are fetched again
    (target / "davis2016/Annotations/480p/bus/00003.png").write_bytes(b"broken")
    shutil.rmtree(target / "davis2016/JPEGImages/480p/stroller")
    assert set(A.ASSETS["davis2016"].check(target)) == {"davis2016/JPEGImages/480p/stroller",
                                                        "davis2016/Annotations/480p/bus"}
    assert A.download(["yolox-nano", "davis2016"], target, file_url(mirror),
                      say=lambda _: None) == ["davis2016"]
    assert A.ASSETS["davis2016"].check(target) == []


def test_offline_download_is_one_line(tmp_path):
    result = subprocess.run([sys.executable, "-m", "promptrack.assets", "yolox-nano", "--dir", str(tmp_path / "dl"),
                             "--mirror", file_url(tmp_path / "absent")], capture_output=True, text=True, timeout=120,
                            cwd=tmp_path)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "cannot download" in result.stderr and "yolox_nano.onnx" in result.stderr


def test_lookup_prefers_the_download_folder_then_shared(tmp_path, monkeypatch, mirror):
    shared = tmp_path / "shared" / "assets"
    monkeypatch.setattr(A, "CHECKOUT", tmp_path / "clone")
    monkeypatch.setenv("PROMPTRACK_ASSETS", str(tmp_path / "dl"))
    with pytest.raises(A.AssetError, match=r"not found in .*dl or .*shared/assets: run `python -m promptrack.assets`"):
        A.locate("yolox-nano")
    A.download(["yolox-nano"], shared, file_url(mirror), say=lambda _: None)
    assert A.locate("yolox-nano") == shared
    A.download(["yolox-nano"], None, file_url(mirror), say=lambda _: None)  # into $PROMPTRACK_ASSETS
    assert A.locate("yolox-nano") == tmp_path / "dl"
    # a folder counts only when it holds every asset asked for
    with pytest.raises(A.AssetError, match="davis2016"):
        A.locate("yolox-nano", "davis2016")
