"""Media cleaning: content sniffing, metadata stripping with Pillow, thumbnails."""

from __future__ import annotations

import io

import pytest
from PIL import Image, PngImagePlugin

from qorgau.kernel.errors import Problem
from qorgau.messenger.media import _render_thumbnail, _thumbnail_size, sniff, strip_image

GPS_IFD = 0x8825
ORIENTATION = 0x0112


def _jpeg(exif: Image.Exif | None = None, size: tuple[int, int] = (40, 20)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (10, 200, 10)).save(out, "JPEG", exif=exif if exif is not None else Image.Exif())
    return out.getvalue()


def test_sniffing_trusts_bytes_not_the_declared_type() -> None:
    assert sniff(_jpeg(), "text/plain") == "image/jpeg"
    assert sniff(b"%PDF-1.7\n...", "image/png") == "application/pdf"
    assert sniff("сәлем".encode(), "text/plain") == "text/plain; charset=utf-8"
    assert sniff(b"\xff\xfe\x00binary", "text/plain") == "application/octet-stream"
    assert sniff(b"<html><script>", "text/html") == "application/octet-stream"


def test_jpeg_loses_gps_and_camera_but_keeps_its_orientation() -> None:
    exif = Image.Exif()
    exif[0x0110] = "Phone 12"
    exif[ORIENTATION] = 6  # rotated 90° clockwise: the stored 40x20 pixels show as 20x40
    exif[GPS_IFD] = {1: "N", 2: (51.0, 10.0, 0.0), 3: "E", 4: (71.0, 26.0, 0.0)}
    original = _jpeg(exif)
    assert Image.open(io.BytesIO(original)).getexif().get_ifd(GPS_IFD)
    cleaned, width, height = strip_image(original, "image/jpeg")
    img = Image.open(io.BytesIO(cleaned))
    assert len(img.getexif()) == 0 and b"Exif" not in cleaned and b"Phone 12" not in cleaned
    assert (width, height) == img.size == (20, 40)


def test_png_text_chunks_and_profiles_are_dropped() -> None:
    info = PngImagePlugin.PngInfo()
    info.add_text("Author", "Нұрлан Ахметов")
    info.add_text("GPS", "51.1, 71.4")
    out = io.BytesIO()
    Image.new("RGBA", (8, 8)).save(out, "PNG", pnginfo=info)
    cleaned, _w, _h = strip_image(out.getvalue(), "image/png")
    assert Image.open(io.BytesIO(cleaned)).text == {}
    assert "Нұрлан".encode() not in cleaned and b"51.1" not in cleaned


def test_gif_comments_are_dropped_and_animation_kept() -> None:
    frames = [Image.new("RGB", (6, 6), (i * 80, 0, 0)) for i in range(3)]
    out = io.BytesIO()
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:], comment=b"secret place")
    cleaned, _w, _h = strip_image(out.getvalue(), "image/gif")
    assert b"secret place" not in cleaned
    assert Image.open(io.BytesIO(cleaned)).n_frames == 3


def test_broken_images_are_refused() -> None:
    with pytest.raises(Problem):
        strip_image(b"\xff\xd8\xff\xe0 not really", "image/jpeg")


def test_thumbnail_sizes_snap_to_standard_ones() -> None:
    assert _thumbnail_size(30, 30, "crop") == (32, 32, "crop")
    assert _thumbnail_size(50, 50, "crop") == (96, 96, "crop")
    assert _thumbnail_size(100, 100, "scale") == (320, 240, "scale")
    assert _thumbnail_size(5000, 5000, "scale") == (800, 600, "scale")
    assert _thumbnail_size(10, 10, "other") == (320, 240, "scale")
    data, content_type = _render_thumbnail(_jpeg(size=(400, 300)), 96, 96, "crop")
    assert content_type == "image/jpeg" and Image.open(io.BytesIO(data)).size == (96, 96)
    data, _ct = _render_thumbnail(_jpeg(size=(400, 300)), 320, 240, "scale")
    assert Image.open(io.BytesIO(data)).size == (320, 240)
