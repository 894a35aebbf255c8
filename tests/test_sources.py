import av
import cv2
import numpy as np
import pytest

from conftest import moving_boxes_frames, write_video
from promptrack.pipeline.errors import InputError
from promptrack.pipeline.sources import DecordSource, PyAVSource, open_source


def test_video_streams_frames_in_order_with_window(synthetic_video):
    source = open_source(synthetic_video, start=3, max_frames=5)
    assert (source.info.width, source.info.height, source.info.frames) == (160, 120, 24)
    assert source.info.fps == pytest.approx(10.0)
    got = [(i, f.shape, f.dtype) for i, f in source]
    assert got == [(i, (120, 160, 3), np.uint8) for i in range(3, 8)]
    assert len(source) == 5


def test_decord_and_pyav_decode_the_same_frames(synthetic_video):
    info = open_source(synthetic_video).info
    a = [f for _, f in DecordSource(info, start=2, end=6)]
    b = [f for _, f in PyAVSource(info, start=2, end=6)]
    assert len(a) == len(b) == 4
    for x, y in zip(a, b):
        assert np.abs(x.astype(int) - y.astype(int)).mean() < 2.0
    # RGB order: the red box is red (frame 2, box at x=16..46, y=30..70)
    r, g, bl = a[0][50, 25]
    assert r > 150 and g < 100 and bl < 100


def test_source_is_a_lazy_stream(synthetic_video):
    it = iter(open_source(synthetic_video))
    index, frame = next(it)  # nothing past the first frame has to be decoded
    assert index == 0 and frame.shape == (120, 160, 3)


def test_frame_folder(tmp_path):
    for i, frame in enumerate(moving_boxes_frames(4)):
        cv2.imwrite(str(tmp_path / f"{i:05d}.jpg"), frame[..., ::-1])
    (tmp_path / "notes.txt").write_text("ignored")
    source = open_source(tmp_path, end=3)
    assert source.info.frames == 4 and [i for i, _ in source] == [0, 1, 2]


def test_missing_input():
    with pytest.raises(InputError, match="input not found"):
        open_source("/nonexistent/clip.mp4")


def test_text_file_named_mp4(tmp_path):
    fake = tmp_path / "fake.mp4"
    fake.write_text("this is not a video")
    with pytest.raises(InputError, match="cannot read .* as a video"):
        open_source(fake)


def test_zero_frame_video(tmp_path):
    path = tmp_path / "empty.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        container.start_encoding()
    with pytest.raises(InputError, match="no video frames"):
        open_source(path)


def test_start_past_end(synthetic_video):
    with pytest.raises(InputError, match="past the end"):
        open_source(synthetic_video, start=24)


def test_empty_folder(tmp_path):
    with pytest.raises(InputError, match="holds no frames"):
        open_source(tmp_path)


def test_real_video_asset(assets):
    source = open_source(assets / "videos" / "bedroom.mp4", start=195)
    assert (source.info.width, source.info.height, source.info.frames) == (960, 540, 200)
    assert [i for i, _ in source] == [195, 196, 197, 198, 199]


def test_odd_sized_video_decodes(tmp_path):
    frames = [np.full((51, 75, 3), 128, np.uint8)] * 3
    path = write_video(tmp_path / "odd.mkv", [np.pad(f, ((0, 1), (0, 1), (0, 0))) for f in frames])
    assert len(list(open_source(path))) == 3
