"""Static files and directories, with the names of ``twisted.web.static``.

``File(path)`` serves a file, or a directory tree: index files, else a listing.  Beyond
Twisted:

- No request path leaves the root: ``..``, encoded slashes and backslashes, NUL bytes and
  undecodable names get 404; symbolic links that lead out of the root get 403 unless
  ``allowSymlinksOut`` (checked again on the opened file, so swapping a file for a link
  after the check does not help).  FIFOs and devices are refused, never opened blocking.
- Validators: a strong ETag (inode, size, mtime) with If-None-Match, Last-Modified with
  If-Modified-Since, and If-Range; ``cacheControl`` sets Cache-Control.
- Ranges: single, multiple (multipart/byteranges), suffix; 416 with ``bytes */size``.
- ``name.gz`` is served in place of ``name`` to clients that accept gzip
  (``precompressed``), with Vary: Accept-Encoding.
- Files up to 64 KiB are sent in one write; larger ones stream with backpressure, through
  ``os.sendfile`` over plain TCP (``IRequest.sendfile``), without being read whole.
- text/* types get ``charset`` (utf-8); ``X-Content-Type-Options: nosniff`` is sent, so a
  browser never takes a text file for HTML.

Scripts: ``processors`` (extension -> callable(path, registry) -> resource) is honoured as
in Twisted: ``{".rpy": hive.script.ResourceScript, ".cgi": hive.twcgi.CGIScript}`` runs
them (``hive run --path DIR --scripts`` sets exactly that, with ``.epy``).  A ``.rpy``,
``.epy`` or ``.cgi`` file without a processor is never served (404): Twisted's
``twistd web --path`` would run it, and serving it as a file would show the script.
"""

from __future__ import annotations

import asyncio
import errno
import html
import logging
import mimetypes
import os
import secrets
import stat
from collections.abc import Callable, Sequence
from typing import Any, BinaryIO, Final
from urllib.parse import quote, unquote_to_bytes

from hive import http
from hive._encoding import accepts_encoding, add_vary
from hive.iweb import IRequest
from hive.resource import NOT_DONE_YET, ForbiddenResource, NoResource, Resource
from hive.urlpath import site_prefix
from hive.util import redirectTo

__all__ = [
    "Data",
    "DirectoryLister",
    "File",
    "Registry",
    "formatFileSize",
    "getTypeAndEncoding",
    "loadMimeTypes",
]

log = logging.getLogger("hive.static")

# What Python's table lacks or has dated (RFC 9239 made JavaScript text/javascript).
_EXTRA_TYPES: Final = {
    ".js": "text/javascript",
    ".mjs": "text/javascript",
    ".map": "application/json",
    ".webmanifest": "application/manifest+json",
    ".wasm": "application/wasm",
    ".webp": "image/webp",
    ".avif": "image/avif",
    ".woff": "font/woff",
    ".woff2": "font/woff2",
    ".ttf": "font/ttf",
    ".otf": "font/otf",
    ".md": "text/markdown",
    ".py": "text/plain",
    ".diff": "text/plain",
    ".patch": "text/plain",
    ".conf": "text/plain",
    ".log": "text/plain",
    ".flac": "audio/flac",
    ".ogg": "audio/ogg",
    ".webm": "video/webm",
}

#: Script extensions ``twistd web --path`` runs: never served as files (their source).
_SCRIPT_EXTENSIONS: Final = frozenset({".rpy", ".epy", ".cgi"})
#: Bodies up to this size are read at once and sent in one write.
_SMALL: Final = 64 * 1024
#: More ranges than this in one Range header: the header is ignored (the whole file).
_MAX_RANGES: Final = 64
#: os.stat errors that mean "no such file here" rather than a server problem.
_MISSING: Final = frozenset({errno.ENOENT, errno.ENOTDIR, errno.ENAMETOOLONG, errno.ELOOP})
_DENIED: Final = frozenset({errno.EACCES, errno.EPERM})
_OPEN_FLAGS: Final = (
    os.O_RDONLY
    | getattr(os, "O_NONBLOCK", 0)
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_NOCTTY", 0)
)


def loadMimeTypes(mimetype_locations: Sequence[str] | None = None) -> dict[str, str]:
    """Extension (".css") to media type: Python's table, a few modern additions, and the
    ``mime.types`` files given, if any.

    Unlike Twisted, the system's files are not read by default, so a site serves the same
    types on every machine.
    """
    types = dict(mimetypes.MimeTypes().types_map[True])
    types.update(_EXTRA_TYPES)
    for location in mimetype_locations or ():
        # The files given win, even over the additions; an unreadable one is skipped.
        types.update(_read_mime_types(location))
    return types


def _read_mime_types(path: str) -> dict[str, str]:
    """The extensions of a ``mime.types`` file ("type ext ext...", # comments), alone:
    mimetypes.read_mime_types would mix Python's own table in."""
    try:
        with open(path, encoding="utf-8", errors="replace") as file:
            lines = file.readlines()
    except OSError:
        return {}
    types = {}
    for line in lines:
        words = line.split("#", 1)[0].split()
        for extension in words[1:]:
            types["." + extension.lower()] = words[0]
    return types


def getTypeAndEncoding(
    filename: str, types: dict[str, str], encodings: dict[str, str], defaultType: str
) -> tuple[str, str | None]:
    """(media type, content encoding) of ``filename``: "x.tar.gz" is a gzip-encoded tar."""
    base, ext = os.path.splitext(filename)
    ext = ext.lower()
    encoding = encodings.get(ext)
    if encoding is not None:
        ext = os.path.splitext(base)[1].lower()
    return types.get(ext, defaultType), encoding


def formatFileSize(size: int) -> str:
    """A human-readable size: "512B", "3K", "12M", "1G"."""
    if size < 1024:
        return "%iB" % size
    if size < 1024**2:
        return "%iK" % (size / 1024)
    if size < 1024**3:
        return "%iM" % (size / (1024**2))
    return "%iG" % (size / (1024**3))


def _safe_name(segment: bytes) -> str | None:
    """The file name a path segment asks for, or None if it is not a plain name."""
    try:
        name = segment.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if name in (".", "..") or "/" in name or "\\" in name or "\x00" in name:
        return None
    if os.sep in name or (os.altsep and os.altsep in name):
        return None
    return name


def _within(path: str, root: str) -> bool:
    return path == root or path.startswith(os.path.join(root, ""))


def _media_type(kind: str, charset: str | None) -> bytes:
    if charset and kind.startswith("text/") and "charset=" not in kind.lower():
        kind = f"{kind}; charset={charset}"
    return kind.encode("latin-1")


_streams: set[asyncio.Task[None]] = set()


class Registry:
    """What Twisted hands to processors (.rpy scripts): the cache of ``cache()``d scripts
    and components by interface (``setComponent``/``getComponent``), per worker."""

    def __init__(self) -> None:
        self._pathCache: dict[str, Any] = {}
        self._components: dict[Any, Any] = {}

    def cachePath(self, path: str, rsrc: Any) -> None:
        self._pathCache[path] = rsrc

    def getCachedPath(self, path: str) -> Any:
        return self._pathCache.get(path)

    def setComponent(self, interfaceClass: Any, component: Any) -> None:
        self._components[interfaceClass] = component

    def getComponent(self, interface: Any, default: Any = None) -> Any:
        return self._components.get(interface, default)

    def unsetComponent(self, interfaceClass: Any) -> None:
        self._components.pop(interfaceClass, None)


class File(Resource):
    """A file, or a directory whose files and subdirectories are its children.

    ``path`` is the file or directory.  ``defaultType`` is the media type of files whose
    extension is unknown; ``ignoredExts`` lets "/page" find "page.html" (with
    ``(".html",)``), or any "page.*" (with ``("*",)``).  ``registry`` is kept for
    processors; ``allowExt`` is ignored (Twisted's, deprecated).  ``cacheControl`` and
    ``allowSymlinksOut`` override the class attributes of the same names.
    """

    contentTypes: dict[str, str] = loadMimeTypes()
    # Mutable class attributes, as in Twisted: replaced (not mutated) per instance.
    contentEncodings: dict[str, str] = {".gz": "gzip", ".bz2": "bzip2"}  # noqa: RUF012
    processors: dict[str, Callable[[str, Any], Any]] = {}  # noqa: RUF012
    #: Looked for, in order, when a directory is asked for (``index.rpy`` only when a
    #: processor runs .rpy files).
    indexNames: list[str] = ["index", "index.html", "index.htm", "index.rpy"]  # noqa: RUF012
    type: str | None = None
    encoding: str | None = None
    childNotFound: Resource = NoResource("File not found.")
    forbidden: Resource = ForbiddenResource()
    #: The Cache-Control of every response, e.g. b"public, max-age=3600"; None for none.
    cacheControl: bytes | None = None
    #: Follow symbolic links that lead out of the root directory (else 403).
    allowSymlinksOut: bool = False
    #: Serve "name.gz" in place of "name" to clients that accept gzip.
    precompressed: bool = True
    #: W/"..." ETags; they cannot satisfy If-Range, so ranges then need If-Range dates.
    weakETags: bool = False
    #: Added to text/* types; None for none.
    charset: str | None = "utf-8"

    def __init__(
        self,
        path: str | bytes | os.PathLike[str],
        defaultType: str = "text/html",
        ignoredExts: Sequence[str] = (),
        registry: Any = None,
        allowExt: int = 0,
        *,
        cacheControl: bytes | None = None,
        allowSymlinksOut: bool | None = None,
    ) -> None:
        super().__init__()
        self.path = os.path.abspath(os.fsdecode(path))
        self.defaultType = defaultType
        if isinstance(ignoredExts, bool | int):
            # Twisted's old boolean form: true meant "any extension".
            self.ignoredExts: list[str] = ["*"] if ignoredExts or allowExt else []
        else:
            self.ignoredExts = list(ignoredExts)
        self.registry = registry if registry is not None else Registry()
        if cacheControl is not None:
            self.cacheControl = cacheControl
        if allowSymlinksOut is not None:
            self.allowSymlinksOut = allowSymlinksOut
        self._root: str | None = None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.path!r}>"

    # -- Twisted's FilePath-like helpers -------------------------------------------------

    def basename(self) -> str:
        return os.path.basename(self.path)

    def exists(self) -> bool:
        return os.path.exists(self.path)

    def isdir(self) -> bool:
        return os.path.isdir(self.path)

    def getFileSize(self) -> int:
        return os.path.getsize(self.path)

    def getModificationTime(self) -> float:
        return os.path.getmtime(self.path)

    def openForReading(self) -> BinaryIO:
        """Open the file for reading (Twisted's; ``render_GET`` opens it itself, without
        blocking on a FIFO)."""
        return open(self.path, "rb")

    def ignoreExt(self, ext: str) -> None:
        """Let a request for "name" find "name" + ``ext``."""
        self.ignoredExts.append(ext)

    def listNames(self) -> list[str]:
        if not self.isdir():
            return []
        return sorted(os.listdir(self.path))

    def listEntities(self) -> list[File]:
        return [self.createSimilarFile(os.path.join(self.path, n)) for n in self.listNames()]

    def directoryListing(self) -> DirectoryLister:
        """The resource that lists this directory."""
        return DirectoryLister(
            self.path, None, self.contentTypes, self.contentEncodings, self.defaultType
        )

    def createSimilarFile(self, path: str) -> File:
        """A File for ``path`` with this one's settings (and root)."""
        similar = self.__class__(path, self.defaultType, self.ignoredExts, self.registry)
        similar.processors = self.processors
        similar.indexNames = self.indexNames[:]
        similar.childNotFound = self.childNotFound
        similar.forbidden = self.forbidden
        similar.contentTypes = self.contentTypes
        similar.contentEncodings = self.contentEncodings
        similar.cacheControl = self.cacheControl
        similar.allowSymlinksOut = self.allowSymlinksOut
        similar.precompressed = self.precompressed
        similar.weakETags = self.weakETags
        similar.charset = self.charset
        similar._root = self._root_dir()
        return similar

    # -- the tree ------------------------------------------------------------------------

    def _root_dir(self) -> str:
        """The real path that nothing served may be outside of: the first File's."""
        root = self._root
        if root is None:
            root = self._root = os.path.realpath(self.path)
        return root

    def _inside(self, path: str, fd: int | None = None) -> bool:
        """Whether ``path`` (opened as ``fd``, if given) really is under the root."""
        if self.allowSymlinksOut:
            return True
        real = None
        if fd is not None:
            try:
                # What was opened, whatever happened to the name since the check.
                real = os.readlink(f"/proc/self/fd/{fd}")
            except OSError:
                real = None
        if real is None:
            real = os.path.realpath(path)
        return _within(real, self._root_dir())

    def getChild(self, path: bytes, request: IRequest) -> Any:
        """The File for the name ``path`` in this directory; for b"", the index file or a
        listing; 404 for anything that is not a plain name, 403 for a link out of the root."""
        name = _safe_name(path)
        if name is None:
            return self.childNotFound
        try:
            if not stat.S_ISDIR(os.stat(self.path).st_mode):
                return self.childNotFound
        except (OSError, ValueError):
            return self.childNotFound
        if name:
            child = os.path.join(self.path, name)
            if not os.path.exists(child):
                found = self._with_ignored_ext(name)
                if found is None:
                    return self.childNotFound
                child = found
        else:
            index = self._find_index()
            if index is None:
                return self.directoryListing()
            child = index
        extension = os.path.splitext(child)[1].lower()
        processor = self.processors.get(extension)
        if processor is None and extension in _SCRIPT_EXTENSIONS:
            log.warning("not serving %s: scripts run only with a processor (--scripts)", child)
            return self.childNotFound
        if not self._inside(child):
            return self.forbidden
        if processor is not None:
            return processor(child, self.registry)
        return self.createSimilarFile(child)

    def _find_index(self) -> str | None:
        for name in self.indexNames:
            extension = os.path.splitext(name)[1].lower()
            if extension in _SCRIPT_EXTENSIONS and extension not in self.processors:
                continue
            candidate = os.path.join(self.path, name)
            if os.path.isfile(candidate):
                return candidate
        return None

    def _with_ignored_ext(self, name: str) -> str | None:
        base = os.path.join(self.path, name)
        for ext in self.ignoredExts:
            if ext in ("*", ""):
                try:
                    names = sorted(n for n in os.listdir(self.path) if n.startswith(name + "."))
                except OSError:
                    continue
                if names:
                    return os.path.join(self.path, names[0])
            elif os.path.exists(base + ext):
                return base + ext
        return None

    # -- rendering -----------------------------------------------------------------------

    def render_GET(self, request: IRequest) -> Any:
        """Send the file, part of it (Range), or 304; redirect a directory to "dir/"."""
        if self.type is None:
            self.type, self.encoding = getTypeAndEncoding(
                self.basename(), self.contentTypes, self.contentEncodings, self.defaultType
            )
        try:
            info = os.stat(self.path)
        except (OSError, ValueError) as exc:
            return self._refuse(request, exc)
        if stat.S_ISDIR(info.st_mode):
            return self.redirect(request)
        path, encoding, varies = self._representation(request, info.st_mtime)
        try:
            fd = os.open(path, _OPEN_FLAGS)
        except (OSError, ValueError) as exc:
            return self._refuse(request, exc)
        file = os.fdopen(fd, "rb", buffering=0)
        try:
            result = self._render_open(request, file, path, encoding, varies)
        except BaseException:
            file.close()
            raise
        if result is not NOT_DONE_YET:
            file.close()  # else the stream closes it when done
        return result

    render_HEAD = render_GET

    def _refuse(self, request: IRequest, exc: OSError | ValueError) -> bytes:
        """404 for a file that is not there (or a name no file can have), 403 if denied."""
        if isinstance(exc, OSError):
            if exc.errno in _DENIED:
                return bytes(self.forbidden.render(request))
            if exc.errno not in _MISSING:
                raise exc  # EIO and the like: a server problem, 500
        return bytes(self.childNotFound.render(request))

    def _representation(self, request: IRequest, mtime: float) -> tuple[str, str | None, bool]:
        """(path, content encoding, varies with Accept-Encoding): "name.gz" for a client
        that accepts gzip, when it exists and is not older than "name" (a stale copy would
        serve old content to some clients only: a bug hard to see)."""
        if not self.precompressed or self.encoding is not None:
            return self.path, self.encoding, False
        compressed = self.path + ".gz"
        try:
            packed = os.stat(compressed)
        except (OSError, ValueError):
            return self.path, None, False
        if not stat.S_ISREG(packed.st_mode) or packed.st_mtime < mtime:
            return self.path, None, False
        if accepts_encoding(request, b"gzip", (b"x-gzip",)):
            return compressed, "gzip", True
        return self.path, None, True

    def _render_open(
        self, request: IRequest, file: BinaryIO, path: str, encoding: str | None, varies: bool
    ) -> Any:
        """Answer from the opened ``file`` (the representation at ``path``)."""
        fd = file.fileno()
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return self.forbidden.render(request)  # a FIFO or a device: never read from
        if not self._inside(path, fd):
            return self.forbidden.render(request)
        request.setHeader(b"accept-ranges", b"bytes")
        if varies:
            add_vary(request)
        if self.cacheControl:
            request.setHeader(b"cache-control", self.cacheControl)
        etag = b'"%x-%x-%x"' % (info.st_ino, info.st_size, info.st_mtime_ns)
        if self.weakETags:
            etag = b"W/" + etag
        cached = request.setETag(etag)
        if request.setLastModified(info.st_mtime) is http.CACHED or cached is http.CACHED:
            return b""
        size = info.st_size
        ranges = None
        if request.method == b"GET" and self._if_range_holds(request, etag):
            header = request.getHeader(b"range")
            if header is not None:
                ranges = parse_ranges(header, size)
        if ranges == []:
            request.setResponseCode(http.REQUESTED_RANGE_NOT_SATISFIABLE)
            request.setHeader(b"content-range", b"bytes */%d" % size)
            return b""
        content_type = _media_type(self.type or self.defaultType, self.charset)
        request.setHeader(b"content-type", content_type)
        if encoding:
            request.setHeader(b"content-encoding", encoding.encode("latin-1"))
        request.setHeader(b"x-content-type-options", b"nosniff")
        if ranges is None:
            parts = [(b"", 0, size)]
        elif len(ranges) == 1:
            start, stop = ranges[0]
            request.setResponseCode(http.PARTIAL_CONTENT)
            request.setHeader(b"content-range", b"bytes %d-%d/%d" % (start, stop - 1, size))
            parts = [(b"", start, stop - start)]
        else:
            request.setResponseCode(http.PARTIAL_CONTENT)
            boundary = secrets.token_hex(16).encode("ascii")
            request.setHeader(b"content-type", b"multipart/byteranges; boundary=" + boundary)
            parts = [
                (
                    b"\r\n--%s\r\nContent-Type: %s\r\nContent-Range: bytes %d-%d/%d\r\n\r\n"
                    % (boundary, content_type, start, stop - 1, size),
                    start,
                    stop - start,
                )
                for start, stop in ranges
            ]
            parts.append((b"\r\n--%s--\r\n" % boundary, 0, 0))
        length = sum(len(prefix) + count for prefix, _, count in parts)
        request.setHeader(b"content-length", b"%d" % length)
        if request.method == b"HEAD":
            return b""
        if length <= _SMALL:
            return b"".join(prefix + os.pread(fd, count, offset) for prefix, offset, count in parts)
        task = asyncio.get_running_loop().create_task(_stream(request, file, parts))
        _streams.add(task)  # the loop keeps only a weak reference
        task.add_done_callback(_streams.discard)
        return NOT_DONE_YET

    def _if_range_holds(self, request: IRequest, etag: bytes) -> bool:
        """Whether a Range may be honoured: no If-Range, or one that names this version."""
        value = request.getHeader(b"if-range")
        if value is None:
            return True
        value = value.strip()
        if value.startswith(b'"'):
            return not etag.startswith(b"W/") and value == etag  # strong comparison
        if value.startswith(b"W/"):
            return False
        try:
            return http.stringToDatetime(value) == request.lastModified
        except ValueError:
            return False

    def redirect(self, request: IRequest) -> bytes:
        """Send a directory asked for without its trailing slash to "dir/"."""
        return redirectTo(_add_slash(request), request)


def _add_slash(request: IRequest) -> bytes:
    """The path the client asked for with a slash added, query kept (behind a proxy's
    prefix, the prefix first); never a scheme-relative URL."""
    _, question, query = request.uri.partition(b"?")
    path = request.path + b"/"
    if path.startswith(b"//"):
        path = b"/" + path.lstrip(b"/")
    return site_prefix(request) + path + question + query


async def _stream(request: IRequest, file: BinaryIO, parts: list[tuple[bytes, int, int]]) -> None:
    """Send the parts (a prefix, then ``count`` bytes from ``offset``) and finish."""
    try:
        for prefix, offset, count in parts:
            if prefix:
                request.write(prefix)
            if count:
                await request.sendfile(file, offset, count)
        request.finish()
    except ConnectionError:
        pass  # the client went away; nothing to finish
    except Exception as exc:
        request.processingFailed(exc)
    finally:
        file.close()


def parse_ranges(header: bytes, size: int) -> list[tuple[int, int]] | None:
    """The satisfiable ranges of a Range header as (start, stop) pairs, stop exclusive.

    None: the header is to be ignored (not bytes, malformed, too many ranges), and the
    whole file sent.  []: no range overlaps the file (416).  Overlapping ranges are
    merged (RFC 9110 section 14.2 allows it), which also bounds the response's size.
    """
    unit, equals, spec = header.partition(b"=")
    if not equals or unit.strip().lower() != b"bytes":
        return None
    elements = [element.strip() for element in spec.split(b",")]
    elements = [element for element in elements if element]
    if not elements or len(elements) > _MAX_RANGES:
        return None
    ranges: list[tuple[int, int]] = []
    for element in elements:
        first, dash, last = element.partition(b"-")
        first, last = first.strip(), last.strip()
        if not dash or (first and not first.isdigit()) or (last and not last.isdigit()):
            return None
        if first:
            start = int(first)
            if last and int(last) < start:
                return None
            stop = min(int(last) + 1, size) if last else size
            if start < size:
                ranges.append((start, stop))
        elif last:
            suffix = int(last)
            if suffix > 0 and size > 0:
                ranges.append((max(size - suffix, 0), size))
        else:
            return None
    ordered = sorted(ranges)
    if any(ordered[i][1] > ordered[i + 1][0] for i in range(len(ordered) - 1)):
        merged = [ordered[0]]
        for start, stop in ordered[1:]:
            if start <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], stop))
            else:
                merged.append((start, stop))
        return merged
    return ranges


class DirectoryLister(Resource):
    """An HTML listing of a directory: subdirectories first, then files with their size,
    type and encoding.  Every name is HTML-escaped in the text and percent-encoded in
    the link."""

    template = """<html>
<head>
<meta charset="utf-8">
<title>%(header)s</title>
<style>
.even-dir { background-color: #efe0ef }
.even { background-color: #eee }
.odd-dir {background-color: #f0d0ef }
.odd { background-color: #dedede }
.listing { margin-left: auto; margin-right: auto; width: 50%%; padding: 0.1em; }
body { border: 0; padding: 0; margin: 0; background-color: #efefef; }
h1 {padding: 0.1em; background-color: #777; color: white; border-bottom: thin white dashed;}
</style>
</head>
<body>
<h1>%(header)s</h1>
<table>
    <thead>
        <tr><th>Filename</th><th>Size</th><th>Content type</th><th>Content encoding</th></tr>
    </thead>
    <tbody>
%(tableContent)s
    </tbody>
</table>
</body>
</html>
"""

    linePattern = """<tr class="%(class)s">
    <td><a href="%(href)s">%(text)s</a></td>
    <td>%(size)s</td>
    <td>%(type)s</td>
    <td>%(encoding)s</td>
</tr>
"""

    def __init__(
        self,
        pathname: str,
        dirs: Sequence[str] | None = None,
        contentTypes: dict[str, str] | None = None,
        contentEncodings: dict[str, str] | None = None,
        defaultType: str = "text/html",
    ) -> None:
        super().__init__()
        self.contentTypes = File.contentTypes if contentTypes is None else contentTypes
        self.contentEncodings = (
            File.contentEncodings if contentEncodings is None else contentEncodings
        )
        self.defaultType = defaultType
        #: The names to list; None for what the directory holds when rendered.
        self.dirs = dirs
        self.path = pathname

    def _getFilesAndDirectories(
        self, directory: Sequence[str]
    ) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
        """The rows for subdirectories and for files, each a dict for ``linePattern``."""
        dirs: list[dict[str, str]] = []
        files: list[dict[str, str]] = []
        for name in directory:
            href = html.escape(quote(name, safe=""), quote=True)
            text = html.escape(name)
            child = os.path.join(self.path, name)
            try:
                info = os.stat(child)
            except (OSError, ValueError):
                continue  # a broken link, or gone since the directory was read
            if stat.S_ISDIR(info.st_mode):
                row = {"text": text + "/", "href": href + "/", "size": "", "type": "[Directory]"}
                dirs.append({**row, "encoding": ""})
                continue
            kind, encoding = getTypeAndEncoding(
                name, self.contentTypes, self.contentEncodings, self.defaultType
            )
            files.append(
                {
                    "text": text,
                    "href": href,
                    "size": formatFileSize(info.st_size),
                    "type": "[%s]" % html.escape(kind),
                    "encoding": "[%s]" % html.escape(encoding) if encoding else "",
                }
            )
        return dirs, files

    def _buildTableContent(self, elements: list[dict[str, str]]) -> list[str]:
        rows = []
        for number, element in enumerate(elements):
            rows.append(
                self.linePattern % {**element, "class": "odd" if number % 2 == 0 else "even"}
            )
        return rows

    def render(self, request: IRequest) -> bytes:
        request.setHeader(b"content-type", b"text/html; charset=utf-8")
        if self.dirs is None:
            try:
                directory = sorted(os.listdir(self.path))
            except OSError:
                return bytes(NoResource("File not found.").render(request))
        else:
            directory = list(self.dirs)
        dirs, files = self._getFilesAndDirectories(directory)
        where = unquote_to_bytes(site_prefix(request) + request.path).decode("utf-8", "replace")
        header = "Directory listing for %s" % html.escape(where)
        table = "".join(self._buildTableContent(dirs + files))
        return (self.template % {"header": header, "tableContent": table}).encode("utf-8")

    def __repr__(self) -> str:
        return f"<DirectoryLister of {self.path!r}>"


class Data(Resource):
    """A fixed body of bytes with a media type; an ETag lets clients revalidate."""

    def __init__(self, data: bytes, type: str | bytes) -> None:
        super().__init__()
        self.data = data
        self.type = type
        self._tagged: tuple[bytes, bytes] | None = None

    def _etag(self) -> bytes:
        tagged = self._tagged
        if tagged is None or tagged[0] is not self.data:
            import hashlib

            digest = hashlib.blake2b(self.data, digest_size=12).hexdigest()
            tagged = self._tagged = (self.data, b'"%s"' % digest.encode("ascii"))
        return tagged[1]

    def render_GET(self, request: IRequest) -> bytes:
        kind = self.type.encode("latin-1") if isinstance(self.type, str) else self.type
        request.setHeader(b"content-type", kind)
        request.setHeader(b"content-length", b"%d" % len(self.data))
        if request.setETag(self._etag()) is http.CACHED or request.method == b"HEAD":
            return b""
        return self.data

    render_HEAD = render_GET
