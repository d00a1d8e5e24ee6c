"""Attachments are what their bytes say, and lose every trace of where, when and on what they were made."""

from __future__ import annotations

import io
import struct

import pytest
from PIL import ExifTags, Image, PngImagePlugin

from qorgau.reports import media

GPS = {
    ExifTags.GPS.GPSLatitudeRef: "N",
    ExifTags.GPS.GPSLatitude: (43.0, 14.0, 20.04),
    ExifTags.GPS.GPSLongitudeRef: "E",
    ExifTags.GPS.GPSLongitude: (76.0, 53.0, 22.92),
}


def jpeg_with_gps(size: tuple[int, int] = (64, 48), orientation: int | None = None) -> bytes:
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "PhoneMaker"
    exif[ExifTags.Base.Model] = "Model X"
    exif[ExifTags.IFD.GPSInfo] = GPS
    if orientation:
        exif[ExifTags.Base.Orientation] = orientation
    out = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(out, "JPEG", exif=exif.tobytes(), comment=b"taken at home")
    data = out.getvalue()
    assert Image.open(io.BytesIO(data)).getexif().get_ifd(ExifTags.IFD.GPSInfo)  # the fixture really has GPS
    return data


def test_a_photo_loses_gps_camera_and_comment() -> None:
    original = jpeg_with_gps()
    cleaned = media.clean(original, 10_000_000)
    assert (cleaned.kind, cleaned.media_type, cleaned.scrubbed) == (media.Kind.PHOTO, "image/jpeg", True)
    img = Image.open(io.BytesIO(cleaned.data))
    assert img.format == "JPEG" and img.size == (64, 48)
    assert not img.getexif()
    assert not img.getexif().get_ifd(ExifTags.IFD.GPSInfo)
    assert "comment" not in img.info and "exif" not in img.info and "icc_profile" not in img.info
    for trace in (b"Exif", b"PhoneMaker", b"Model X", b"taken at home"):
        assert trace not in cleaned.data


def test_a_photo_stays_upright_without_its_orientation_tag() -> None:
    cleaned = media.clean(jpeg_with_gps((40, 20), orientation=6), 10_000_000)
    assert Image.open(io.BytesIO(cleaned.data)).size == (20, 40)


def test_png_text_chunks_are_dropped() -> None:
    info = PngImagePlugin.PngInfo()
    info.add_text("Author", "Someone Somewhere")
    out = io.BytesIO()
    Image.new("RGBA", (10, 10), (0, 0, 255, 128)).save(out, "PNG", pnginfo=info)
    cleaned = media.clean(out.getvalue(), 10_000_000)
    assert cleaned.media_type == "image/png"
    assert b"Someone Somewhere" not in cleaned.data and b"tEXt" not in cleaned.data


def box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def mp4_with_location() -> bytes:
    mvhd = box(b"mvhd", b"\0\0\0\0" + struct.pack(">II", 3_700_000_000, 3_700_000_001) + b"\0" * 88)
    tkhd = box(b"tkhd", b"\0\0\0\x07" + struct.pack(">II", 3_700_000_000, 3_700_000_001) + b"\0" * 72)
    mdhd = box(b"mdhd", b"\0\0\0\0" + struct.pack(">II", 3_700_000_000, 3_700_000_001) + b"\0" * 12)
    udta = box(b"udta", box(b"\xa9xyz", b"\0\x12\x15\xc7+43.2389+076.8897/") + box(b"\xa9mod", b"Model X"))
    meta = box(b"meta", b"\0\0\0\0" + box(b"ilst", b"com.apple.quicktime.location.ISO6709"))
    trak = box(b"trak", tkhd + box(b"mdia", mdhd) + box(b"udta", box(b"\xa9mak", b"PhoneMaker")))
    moov = box(b"moov", mvhd + trak + udta + meta)
    return box(b"ftyp", b"isom\0\0\2\0isomiso2mp41") + moov + box(b"mdat", b"\1\2\3\4" * 16)


def test_a_video_loses_its_location_device_and_dates_without_moving_a_byte() -> None:
    original = mp4_with_location()
    cleaned = media.clean(original, 10_000_000)
    assert (cleaned.kind, cleaned.media_type, cleaned.scrubbed) == (media.Kind.VIDEO, "video/mp4", True)
    assert len(cleaned.data) == len(original)
    for trace in (b"+43.2389", b"Model X", b"PhoneMaker", b"ISO6709", b"udta", b"\xa9xyz"):
        assert trace not in cleaned.data
    assert struct.pack(">I", 3_700_000_000) not in cleaned.data
    assert cleaned.data.endswith(b"\1\2\3\4" * 16)  # the samples are untouched


def test_mp3_and_wav_lose_their_tags() -> None:
    frame = b"TIT2" + struct.pack(">I", 10) + b"\0\0" + b"\0Recording"
    id3 = b"ID3\x03\x00\x00" + bytes([0, 0, 0, len(frame)]) + frame
    mpeg = b"\xff\xfb\x90\x64" + b"\0" * 400
    mp3 = id3 + mpeg + b"TAG" + b"Somebody".ljust(125, b"\0")
    cleaned = media.clean(mp3, 10_000_000)
    assert (cleaned.kind, cleaned.media_type) == (media.Kind.VOICE, "audio/mpeg")
    assert cleaned.data == mpeg

    fmt = b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, 8000, 16000, 2, 16)
    info = b"LIST" + struct.pack("<I", 16) + b"INFOIART" + struct.pack("<I", 4) + b"Mike"
    data = b"data" + struct.pack("<I", 8) + b"\0" * 8
    body = b"WAVE" + fmt + info + data
    wav = b"RIFF" + struct.pack("<I", len(body)) + body
    cleaned = media.clean(wav, 10_000_000)
    assert cleaned.media_type == "audio/wav" and b"Mike" not in cleaned.data and b"LIST" not in cleaned.data
    assert cleaned.data.endswith(data)


@pytest.mark.parametrize(
    "data",
    [
        b"%PDF-1.4 a document pretending to be a photo",
        b"plain text, named photo.jpg",
        box(b"ftyp", b"heic\0\0\0\0mif1heic") + b"\0" * 64,
        b"GIF89a" + b"\0" * 64,
        b"MZ\x90\x00" + b"\0" * 64,
    ],
    ids=["pdf", "text", "heic", "gif", "exe"],
)
def test_anything_else_is_refused_whatever_its_name(data: bytes) -> None:
    with pytest.raises(media.MediaError) as refused:
        media.clean(data, 10_000_000)
    assert refused.value.code == "reports.attachment_type"


def test_limits_and_broken_files() -> None:
    with pytest.raises(media.MediaError) as too_big:
        media.clean(jpeg_with_gps(), 100)
    assert too_big.value.code == "reports.attachment_too_large"
    with pytest.raises(media.MediaError) as empty:
        media.clean(b"", 100)
    assert empty.value.code == "reports.attachment_empty"
    with pytest.raises(media.MediaError) as broken:
        media.clean(jpeg_with_gps()[:200], 10_000_000)
    assert broken.value.code == "reports.attachment_unreadable"
    with pytest.raises(media.MediaError) as bad_box:
        media.clean(box(b"ftyp", b"isom\0\0\2\0isom") + struct.pack(">I", 999) + b"moov", 10_000_000)
    assert bad_box.value.code == "reports.attachment_unreadable"
