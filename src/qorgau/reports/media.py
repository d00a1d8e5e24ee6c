"""Attachments: what a file really is (sniffed from its bytes), and the file without its metadata.

A phone's photo carries where it was taken (EXIF GPS), on which device and when; a video carries the
same in its container. None of it may reach an officer's screen, let alone a database: it could
identify an anonymous reporter.

- Photos (JPEG, PNG, WebP) are decoded and encoded again with Pillow, upright (EXIF orientation
  applied) and with no metadata at all: no EXIF, GPS, XMP, ICC profile or comment survives.
- MP4/MOV/3GP video and M4A voice (ISO base media files): every ``udta``, ``meta`` and ``uuid`` box
  (where cameras put GPS, make, model and software) is turned into a ``free`` box of the same size
  with its bytes zeroed, and the creation and modification times in the movie, track and media
  headers are zeroed. Sizes never change, so sample offsets stay valid and the file plays as before.
- MP3 loses its ID3v2 and ID3v1 tags; WAV keeps only its ``fmt``, ``fact`` and ``data`` chunks; AMR
  has no metadata.
- WebM and Ogg are accepted as they are and marked as not cleaned (their tags are not rewritten yet).

Anything else is refused, whatever its file name says.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass
from enum import StrEnum

import filetype
from PIL import Image, ImageOps, UnidentifiedImageError

MAX_IMAGE_PIXELS = 40_000_000
MAX_IMAGE_SIDE = 4096


class Kind(StrEnum):
    PHOTO = "photo"
    VIDEO = "video"
    VOICE = "voice"


class MediaError(ValueError):
    """A file that is not accepted; `code` is the problem code shown to the person."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


@dataclass(frozen=True)
class Cleaned:
    kind: Kind
    media_type: str
    data: bytes
    # False when the container's metadata could not be removed (kept as sent, and marked so).
    scrubbed: bool


_PHOTO_FORMATS = {"image/jpeg": "JPEG", "image/png": "PNG", "image/webp": "WEBP"}
_ENCODER_OPTIONS: dict[str, dict[str, object]] = {"JPEG": {"quality": 88, "optimize": True}, "WEBP": {"quality": 88}}
_ISO_VIDEO = {"video/mp4", "video/quicktime", "video/3gpp", "video/x-m4v"}
_AS_IS = {"video/webm": Kind.VIDEO, "audio/ogg": Kind.VOICE}


def clean(data: bytes, max_bytes: int) -> Cleaned:
    """Sniff `data`, refuse what is not a photo, video or voice recording, and strip its metadata."""
    if not data:
        raise MediaError("reports.attachment_empty")
    if len(data) > max_bytes:
        raise MediaError("reports.attachment_too_large")
    guess = filetype.guess(data)
    mime = guess.mime if guess is not None else ""
    if mime in _PHOTO_FORMATS:
        return Cleaned(Kind.PHOTO, mime, reencode_image(data, _PHOTO_FORMATS[mime]), True)
    if mime in _ISO_VIDEO:
        return Cleaned(Kind.VIDEO, mime, scrub_iso_bmff(data), True)
    if mime == "audio/mp4":
        return Cleaned(Kind.VOICE, mime, scrub_iso_bmff(data), True)
    if mime == "audio/mpeg":
        return Cleaned(Kind.VOICE, mime, strip_id3(data), True)
    if mime == "audio/x-wav":
        return Cleaned(Kind.VOICE, "audio/wav", scrub_wav(data), True)
    if mime == "audio/amr":
        return Cleaned(Kind.VOICE, mime, data, True)
    if mime in _AS_IS:
        return Cleaned(_AS_IS[mime], mime, data, False)
    raise MediaError("reports.attachment_type")


# --- photos -----------------------------------------------------------------------------------


def reencode_image(data: bytes, fmt: str) -> bytes:
    """The picture alone: decoded, turned upright, encoded again without any metadata."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            width, height = img.size
            if width * height > MAX_IMAGE_PIXELS:
                raise MediaError("reports.attachment_too_large")
            img.seek(0)  # animations keep their first frame only
            upright = ImageOps.exif_transpose(img)
            upright.thumbnail((MAX_IMAGE_SIDE, MAX_IMAGE_SIDE))
            if fmt == "JPEG" and upright.mode not in ("RGB", "L"):
                upright = upright.convert("RGB")
            elif upright.mode not in ("RGB", "RGBA", "L", "LA", "P"):
                upright = upright.convert("RGBA")
            # A fresh image: nothing of the original's info (exif, xmp, icc_profile, comment, dpi) is
            # left for the encoder to copy.
            pixels = Image.new(upright.mode, upright.size)
            if upright.mode == "P":
                palette = upright.getpalette()
                if palette:
                    pixels.putpalette(palette)
            pixels.paste(upright)
    except MediaError:
        raise
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        raise MediaError("reports.attachment_unreadable") from None
    out = io.BytesIO()
    pixels.save(out, fmt, **_ENCODER_OPTIONS.get(fmt, {}))
    return out.getvalue()


# --- ISO base media (MP4, MOV, 3GP, M4A) ---------------------------------------------------------

_CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"dinf", b"stbl", b"edts", b"mvex", b"moof", b"traf"}
_METADATA = {b"udta", b"meta", b"uuid", b"XMP_"}
_TIMED_HEADERS = {b"mvhd", b"tkhd", b"mdhd"}


def _boxes(buf: bytearray, start: int, end: int) -> list[tuple[int, int, int, bytes]]:
    """(box start, payload start, box end, type) of the boxes between `start` and `end`."""
    found = []
    pos = start
    while pos + 8 <= end:
        size, kind = struct.unpack_from(">I4s", buf, pos)
        header = 8
        if size == 1:
            if pos + 16 > end:
                raise MediaError("reports.attachment_unreadable")
            size = struct.unpack_from(">Q", buf, pos + 8)[0]
            header = 16
        elif size == 0:
            size = end - pos
        if size < header or pos + size > end:
            raise MediaError("reports.attachment_unreadable")
        found.append((pos, pos + header, pos + size, bytes(kind)))
        pos += size
    return found


def _neutralise(buf: bytearray, start: int, end: int) -> None:
    for box_start, payload, box_end, kind in _boxes(buf, start, end):
        if kind in _METADATA:
            # Same size, new type, zeroed body: offsets elsewhere in the file stay valid.
            buf[box_start + 4 : box_start + 8] = b"free"
            buf[payload:box_end] = bytes(box_end - payload)
        elif kind in _TIMED_HEADERS and box_end - payload >= 20:
            wide = buf[payload] == 1
            stamp = 16 if wide else 8
            buf[payload + 4 : payload + 4 + stamp] = bytes(stamp)
        elif kind in _CONTAINERS:
            _neutralise(buf, payload, box_end)


def scrub_iso_bmff(data: bytes) -> bytes:
    buf = bytearray(data)
    _neutralise(buf, 0, len(buf))
    return bytes(buf)


# --- MP3 and WAV ------------------------------------------------------------------------------


def strip_id3(data: bytes) -> bytes:
    body = data
    while body[:3] == b"ID3" and len(body) >= 10:
        size = 0
        for byte in body[6:10]:
            size = (size << 7) | (byte & 0x7F)
        footer = 10 if body[5] & 0x10 else 0
        body = body[10 + size + footer :]
    if len(body) >= 128 and body[-128:-125] == b"TAG":
        body = body[:-128]
    if not body:
        raise MediaError("reports.attachment_unreadable")
    return body


def scrub_wav(data: bytes) -> bytes:
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise MediaError("reports.attachment_unreadable")
    kept = [b"WAVE"]
    pos = 12
    while pos + 8 <= len(data):
        kind, size = struct.unpack_from("<4sI", data, pos)
        chunk = data[pos : pos + 8 + size + (size & 1)]
        if kind in (b"fmt ", b"fact", b"data"):
            kept.append(chunk)
        pos += 8 + size + (size & 1)
    body = b"".join(kept)
    return b"RIFF" + struct.pack("<I", len(body)) + body
