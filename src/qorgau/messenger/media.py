"""Media (Matrix content repository): uploads are sniffed, size-limited, cleaned and sealed at rest.

Storage: the database, one sealed blob per file (envelope encryption bound to the media id), not the
data directory. App instances stay stateless (any number of them behind a load balancer share one
PostgreSQL), a backup or `qorgau export` of the database carries the files with the messages that
point to them, and an upload commits atomically with its metadata. The size limit
(`matrix_media_max_bytes`, 10 MiB by default) keeps blobs within what both engines store well.

Images (JPEG, PNG, WebP, GIF) are decoded and re-encoded with Pillow without their metadata: EXIF
(GPS position, camera serial, time), XMP, IPTC, comments and ICC profiles never reach storage. The
EXIF orientation is applied to the pixels first, so photos keep their orientation. Thumbnails are
made on first request at a few standard sizes and kept, sealed, next to the original.
"""

from __future__ import annotations

import contextlib
import io
import secrets
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import quote

import filetype
import sqlalchemy as sa
from litestar import Response

if TYPE_CHECKING:
    from PIL import Image

from qorgau.kernel.auth.policy import can, rule
from qorgau.kernel.auth.roles import Actor
from qorgau.kernel.context import Ctx, Kernel
from qorgau.kernel.crypto import row_aad, seal, seal_text, unseal, unseal_text
from qorgau.kernel.db import Tx, utc_now_ms
from qorgau.messenger import tables as t
from qorgau.messenger.domain import MESSENGER_ROLES, forbidden, mx_error, new_media_id, not_found, user_id

# Images the server re-encodes (and can thumbnail); anything else is stored as sent.
IMAGE_FORMATS = {"image/jpeg": "JPEG", "image/png": "PNG", "image/webp": "WEBP", "image/gif": "GIF"}
# Types a browser may show inline; everything else is served as an attachment.
INLINE_TYPES = frozenset(
    {*IMAGE_FORMATS, "text/plain; charset=utf-8", "video/mp4", "video/webm", "audio/ogg", "audio/mpeg"}
)
THUMBNAIL_SIZES = ((32, 32, "crop"), (96, 96, "crop"), (320, 240, "scale"), (640, 480, "scale"), (800, 600, "scale"))
MAX_IMAGE_PIXELS = 40_000_000


def _is_official(actor: Actor | None) -> bool:
    return actor is not None and actor.role in MESSENGER_ROLES


rule("messenger.media.upload")(lambda actor, _res: _is_official(actor))
# Officials fetch media; which media is decided by `_check_shared` (uploader or member of a room it was
# shared in), so a leaked media id alone opens nothing.
rule("messenger.media.download")(lambda actor, _res: _is_official(actor))


def mxc_uri(server_name: str, media_id: str) -> str:
    return f"mxc://{server_name}/{media_id}"


def sniff(data: bytes, declared: str | None) -> str:
    """The content type the bytes really have; the client's declaration is trusted only for plain text."""
    kind = filetype.guess(data)
    if kind is not None:
        return str(kind.mime)
    if declared and declared.split(";")[0].strip().lower() == "text/plain":
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            return "application/octet-stream"
        return "text/plain; charset=utf-8"
    return "application/octet-stream"


def _open_image(data: bytes) -> Image.Image:
    from PIL import Image  # imported on first use: most processes never decode an image

    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        img = Image.open(io.BytesIO(data))
        if img.width * img.height > MAX_IMAGE_PIXELS:
            raise mx_error("M_TOO_LARGE", "the image has too many pixels", 413)
        img.load()
    return img


def strip_image(data: bytes, content_type: str) -> tuple[bytes, int, int]:
    """Re-encode an image without any metadata (orientation applied); returns bytes, width, height."""
    from PIL import Image, ImageOps, ImageSequence

    fmt = IMAGE_FORMATS[content_type]
    try:
        img = _open_image(data)
        out = io.BytesIO()
        if fmt == "GIF":
            # Copy the pixels of every frame into fresh images: comments and extensions stay behind.
            frames, durations = [], []
            for frame in ImageSequence.Iterator(img):
                durations.append(int(frame.info.get("duration", 100)))
                clean = frame.convert("RGBA")
                clean.info = {}
                frames.append(clean)
            first, rest = frames[0], frames[1:]
            if rest:
                first.save(out, "GIF", save_all=True, append_images=rest, duration=durations, loop=0)
            else:
                first.save(out, "GIF")
            return out.getvalue(), img.width, img.height
        img = ImageOps.exif_transpose(img) or img
        if fmt == "JPEG":
            if img.mode not in ("RGB", "L"):
                img = img.convert("RGB")
            img.save(out, "JPEG", quality=90)
        elif fmt == "PNG":
            img.save(out, "PNG")
        else:
            img.save(out, "WEBP", quality=90)
        return out.getvalue(), img.width, img.height
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise mx_error("M_UNKNOWN", "the image could not be read", 400) from None


@dataclass(frozen=True)
class StoredMedia:
    media_id: str
    content_type: str
    filename: str | None
    content: bytes

    @property
    def inline(self) -> bool:
        return self.content_type in INLINE_TYPES


def do_upload_media(ctx: Ctx, data: bytes, declared_type: str | None, filename: str | None) -> str:
    """Store an upload (cleaned and sealed); returns its mxc:// URI."""
    kernel = ctx.kernel
    if not can(ctx.actor, "messenger.media.upload"):
        raise forbidden("Only officials of an agency may upload files")
    assert ctx.actor is not None
    if len(data) > kernel.settings.matrix_media_max_bytes:
        raise mx_error("M_TOO_LARGE", "the file is larger than this server accepts", 413)
    content_type = sniff(data, declared_type)
    width = height = None
    if content_type in IMAGE_FORMATS:
        data, width, height = strip_image(data, content_type)
    media_id = new_media_id()
    m = t.media
    name = (filename or "").strip()[:255] or None
    row = {
        "media_id": media_id,
        "account_id": ctx.actor.user_id,
        "content_type": content_type,
        "size": len(data),
        "width": width,
        "height": height,
        "created_at": utc_now_ms(),
        "filename": seal_text(kernel.keyring, name, row_aad(m.name, "filename", media_id)) if name else None,
        "content": seal(kernel.keyring, data, row_aad(m.name, "content", media_id)),
    }
    kernel.db.run(lambda tx: tx.execute(m.insert().values(**row)))
    return mxc_uri(kernel.settings.server_name, media_id)


def _check_download(ctx: Ctx, server_name: str) -> None:
    if not can(ctx.actor, "messenger.media.download"):
        raise forbidden("Only officials of an agency may download files")
    if server_name != ctx.kernel.settings.server_name:
        raise not_found("Media not found (this server does not federate)")


def _check_shared(ctx: Ctx, media_id: str) -> None:
    """The uploader, or a joined member of a room the file was shared in; others get "not found"."""
    actor = ctx.actor
    assert actor is not None
    mxid = user_id(actor.username, ctx.kernel.settings.server_name)
    m, mr, mem = t.media, t.media_rooms, t.members
    with ctx.kernel.db.read() as conn:
        uploader = conn.execute(sa.select(m.c.account_id).where(m.c.media_id == media_id)).scalar()
        if uploader is None:
            raise not_found("Media not found")
        if uploader == actor.user_id:
            return
        shared = conn.execute(
            sa.select(mr.c.room_id)
            .join(mem, mem.c.room_id == mr.c.room_id)
            .where(mr.c.media_id == media_id, mem.c.user_id == mxid, mem.c.membership == "join")
            .limit(1)
        ).first()
    if shared is None:
        raise not_found("Media not found")


def get_media(ctx: Ctx, server_name: str, media_id: str) -> StoredMedia:
    """A stored file, decrypted, for its uploader or a member of a room it was shared in."""
    _check_download(ctx, server_name)
    _check_shared(ctx, media_id)
    return load_media(ctx.kernel, media_id)


def load_media(kernel: Kernel, media_id: str) -> StoredMedia:
    """A stored file, decrypted, without an access check: for callers that checked access their way
    (a letter's attachments, a room export)."""
    m = t.media
    with kernel.db.read() as conn:
        row = conn.execute(
            sa.select(m.c.content_type, m.c.filename, m.c.content).where(m.c.media_id == media_id)
        ).first()
    if row is None:
        raise not_found("Media not found")
    name = unseal_text(kernel.keyring, row.filename, row_aad(m.name, "filename", media_id)) if row.filename else None
    content = unseal(kernel.keyring, row.content, row_aad(m.name, "content", media_id))
    return StoredMedia(media_id, row.content_type, name, content)


def _thumbnail_size(width: int, height: int, method: str) -> tuple[int, int, str]:
    method = "crop" if method == "crop" else "scale"
    fitting = [s for s in THUMBNAIL_SIZES if s[2] == method and s[0] >= width and s[1] >= height]
    if fitting:
        return fitting[0]
    same = [s for s in THUMBNAIL_SIZES if s[2] == method]
    return same[-1]


def _render_thumbnail(data: bytes, width: int, height: int, method: str) -> tuple[bytes, str]:
    from PIL import ImageOps

    img = _open_image(data)
    img = ImageOps.exif_transpose(img) or img
    if method == "crop":
        img = ImageOps.fit(img, (width, height))
    else:
        img.thumbnail((width, height))
    has_alpha = img.mode in ("RGBA", "LA", "P")
    out = io.BytesIO()
    if has_alpha:
        img.convert("RGBA").save(out, "PNG")
        return out.getvalue(), "image/png"
    img.convert("RGB").save(out, "JPEG", quality=85)
    return out.getvalue(), "image/jpeg"


def get_thumbnail(ctx: Ctx, server_name: str, media_id: str, width: int, height: int, method: str) -> StoredMedia:
    """A thumbnail of an image at the nearest standard size (made once, then kept sealed)."""
    _check_download(ctx, server_name)
    _check_shared(ctx, media_id)
    kernel = ctx.kernel
    w, h, method = _thumbnail_size(width, height, method)
    th = t.media_thumbnails
    with kernel.db.read() as conn:
        row = conn.execute(
            sa.select(th.c.id, th.c.content_type, th.c.content).where(
                th.c.media_id == media_id, th.c.width == w, th.c.height == h, th.c.method == method
            )
        ).first()
    if row is not None:
        content = unseal(kernel.keyring, row.content, row_aad(th.name, "content", row.id))
        return StoredMedia(media_id, row.content_type, None, content)
    original = get_media(ctx, server_name, media_id)
    if original.content_type not in IMAGE_FORMATS:
        raise not_found("There is no thumbnail for this media")
    try:
        data, content_type = _render_thumbnail(original.content, w, h, method)
    except (OSError, ValueError):
        raise not_found("There is no thumbnail for this media") from None
    thumb_id = secrets.token_hex(16)
    sealed = seal(kernel.keyring, data, row_aad(th.name, "content", thumb_id))

    def write(tx: Tx) -> None:
        exists = tx.execute(
            sa.select(th.c.id).where(
                th.c.media_id == media_id, th.c.width == w, th.c.height == h, th.c.method == method
            )
        ).first()
        if exists is None:
            tx.execute(
                th.insert().values(
                    id=thumb_id,
                    media_id=media_id,
                    width=w,
                    height=h,
                    method=method,
                    content_type=content_type,
                    content=sealed,
                )
            )

    # Two first requests at once may both render it: the second insert loses, harmlessly.
    with contextlib.suppress(sa.exc.IntegrityError):
        kernel.db.run(write)
    return StoredMedia(media_id, content_type, None, data)


def upload_limit(kernel: Kernel) -> int:
    return kernel.settings.matrix_media_max_bytes


def media_response(found: StoredMedia, file_name: str | None) -> Response[bytes]:
    """The HTTP answer for a stored file, the same for the Matrix API and the web app: only safe types
    inline, never sniffed, sandboxed if opened directly."""
    name = file_name or found.filename
    disposition = "inline" if found.inline else "attachment"
    if name:
        disposition += f"; filename*=utf-8''{quote(name, safe='')}"
    return Response(
        content=found.content,
        media_type=found.content_type,
        headers={
            "Content-Disposition": disposition,
            "Content-Security-Policy": "sandbox; default-src 'none'; script-src 'none'; object-src 'none'",
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "private, max-age=86400",
            "Cross-Origin-Resource-Policy": "cross-origin",
        },
    )
