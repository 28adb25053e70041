"""Where a batch run's files are: this machine's disk, or any filesystem pyarrow opens.

    >>> where = locate("s3://bucket/photos")       # also "photos/", "file:///data/photos", "gs://...", "hdfs://..."
    >>> str(where)
    's3://bucket/photos'

A batch run (:mod:`scenetext.batch`) does every file operation of a run through a :class:`Storage`,
so a folder on the local disk and a prefix in an object store take the same code path: the same
listing rules, output names, refusals and ``skip_existing`` checks. Only the primitive
operations differ:

* :class:`LocalStorage` (plain paths, ``file://`` URIs and any other local pyarrow filesystem):
  only regular files are opened (a FIFO, socket or device is refused unopened), symbolic links to
  folders are not followed when scanning, files are identified by ``(st_dev, st_ino)``, every
  file is written to a temporary file and renamed into place, and ``results.jsonl`` grows one
  whole record at a time;
* :class:`ArrowStorage` (any other URI :func:`pyarrow.fs.FileSystem.from_uri` opens, such as
  ``s3://``, ``gs://`` or ``hdfs://``, or a pyarrow filesystem given from Python): files are
  identified by their path, each is read whole (at most :data:`MAX_OBJECT_BYTES`) and written
  as one whole object (an object store shows the old object or the new one, never part of
  one), and ``results.jsonl`` is written whole when the run ends.

pyarrow is imported only for URIs (it comes with ``scenetext[ray]``).
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path, PurePath, PurePosixPath
from typing import TYPE_CHECKING, Any, Callable, Hashable, Iterator

from .results import Failure

if TYPE_CHECKING:
    from .imageio import DecodedImage

__all__ = ["LOCAL", "MAX_OBJECT_BYTES", "ArrowStorage", "Entry", "LocalStorage", "Location", "RecordLog",
           "Storage", "StorageError", "is_uri", "locate", "on_filesystem"]

#: A file on a non-local filesystem is read whole into memory: at most this many bytes.
MAX_OBJECT_BYTES = 1 << 30
#: Checks of existing outputs on a non-local filesystem run on this many threads (requests in flight).
CHECK_THREADS = 32

_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]+://")


class StorageError(ValueError):
    """A URI that no filesystem opens (unknown scheme, a bucket that cannot be reached, pyarrow
    missing); the message is one line naming the URI."""


def is_uri(text: object) -> bool:
    """True when ``text`` is a string of the form ``scheme://...`` (not a local path)."""
    return isinstance(text, str) and _URI.match(text) is not None


@dataclass(frozen=True)
class Entry:
    """What is at a path, a final symbolic link not followed: its identity and whether it is a
    regular file."""

    identity: Hashable
    regular: bool


class RecordLog:
    """Where ``results.jsonl`` grows, one whole record at a time."""

    def append(self, data: bytes) -> None:
        """Add ``data`` at the end; raises :class:`OSError` (and takes it back) when it cannot be written."""
        raise NotImplementedError

    def close(self) -> None:
        """Make what was appended durable and let go of the file."""
        raise NotImplementedError


class Storage:
    """The file operations of a batch run on one filesystem. Paths are :class:`~pathlib.PurePath`
    objects of the kind :meth:`path` makes; every name shown to a person goes through :meth:`show`."""

    #: The files are on this machine's disk (os paths), so the report can be built from them.
    local = False

    def path(self, text: str) -> PurePath:
        """The path object of this storage for ``text``."""
        raise NotImplementedError

    def show(self, path: PurePath) -> str:
        """``path`` as a person (or a failure record) names it: the local path, or the URI."""
        raise NotImplementedError

    def is_dir(self, path: PurePath) -> bool:
        raise NotImplementedError

    def walk_files(self, folder: PurePath, recursive: bool) -> tuple[list[PurePath], list[Failure]]:
        """Files in ``folder`` (and, when ``recursive``, in its subfolders whose names do not start
        with a dot), each folder's files sorted by name before its subfolders in name order; and
        the folders that could not be listed."""
        raise NotImplementedError

    def file_identity(self, path: PurePath) -> Hashable:
        """The identity of the regular file ``path`` (a file reached twice has one identity).

        Raises:
            ImageLoadError: missing, a folder, not a regular file, or unreadable; nothing is opened.
        """
        raise NotImplementedError

    def entry(self, path: PurePath) -> Entry | None:
        """What is at ``path`` (a final symbolic link not followed); ``None`` when nothing is."""
        raise NotImplementedError

    def within(self, path: PurePath, folder: PurePath) -> bool:
        """True when ``path`` is inside ``folder`` (links resolved where there are any)."""
        raise NotImplementedError

    def is_file(self, path: PurePath) -> bool:
        raise NotImplementedError

    def read_head(self, path: PurePath, size: int) -> bytes:
        """The first ``size`` bytes of the regular file ``path``.

        Raises:
            ImageLoadError: missing, not a regular file, empty or unreadable.
        """
        raise NotImplementedError

    def read_bytes(self, path: PurePath) -> bytes:
        """The whole regular file ``path``.

        Raises:
            ImageLoadError: missing, not a regular file or too large; OSError: unreadable.
        """
        raise NotImplementedError

    def decode(self, path: PurePath) -> "DecodedImage":
        """The image in the file ``path`` (see :func:`scenetext.imageio.decode_image`).

        Raises:
            ImageLoadError: with the one-line reason a plain run reports.
        """
        raise NotImplementedError

    def write_bytes(self, path: PurePath, data: bytes) -> None:
        """Write ``data`` to ``path`` atomically, creating its folders."""
        raise NotImplementedError

    def open_log(self, path: PurePath, kept: bytes, rewrite: bool) -> RecordLog:
        """Open ``path`` to append records to: first replaced by ``kept`` (the records to keep)
        when ``rewrite``, else appended to as it is (``kept`` being what it holds)."""
        raise NotImplementedError

    def remove_leftovers(self, folder: PurePath, names: set[str]) -> int:
        """Delete the temporary files an interrupted atomic write of one of ``names`` left in
        ``folder``; return how many were removed."""
        raise NotImplementedError

    def make_dir(self, path: PurePath) -> None:
        """Create the folder ``path`` if needed and check that outputs can be written there.

        Raises:
            OSError: one line naming the folder.
        """
        raise NotImplementedError

    def listing(self, folder: PurePath | None) -> contextlib.AbstractContextManager:
        """A context in which what is under ``folder`` (listed at its start; ``None``: nothing)
        and what :meth:`walk_files` lists meanwhile may be answered from those listings, instead
        of a request per file. Files written meanwhile are not seen."""
        return contextlib.nullcontext()

    def map(self, check: Callable[[Any], Any], items: list) -> list:
        """``[check(item) for item in items]``, for checks that only read files."""
        return [check(item) for item in items]


@dataclass(frozen=True)
class Location:
    """A path on a storage: a file or folder given to a run, or its output folder."""

    store: Storage
    path: PurePath

    def __str__(self) -> str:
        return self.store.show(self.path)


def locate(where: str | os.PathLike | Location) -> Location:
    """The storage and path of ``where``: a :class:`Location` as it is, a URI (``scheme://...``)
    through :func:`pyarrow.fs.FileSystem.from_uri` (see :func:`on_filesystem`), anything else a
    local path.

    Raises:
        StorageError: no filesystem opens the URI (or pyarrow is not installed).
    """
    if isinstance(where, Location):
        return where
    if not is_uri(where):
        return Location(LOCAL, Path(where))
    try:
        from pyarrow import fs as pafs
    except ImportError:
        raise StorageError(f"{where}: URIs need pyarrow: pip install 'scenetext[ray]'") from None
    try:
        filesystem, path = pafs.FileSystem.from_uri(where)
    except Exception as err:  # noqa: BLE001 - pyarrow raises ArrowInvalid, OSError, ... for a URI it cannot open
        raise StorageError(f"{where}: cannot open this location ({_first_line(err)})") from None
    return on_filesystem(filesystem, path, _prefix(where, path))


def on_filesystem(filesystem: Any, path: str, prefix: str) -> Location:
    """``path`` on a pyarrow filesystem, shown as ``prefix + path``: a local one (also under a
    :class:`pyarrow.fs.SubTreeFileSystem`) is the local disk, anything else an :class:`ArrowStorage`."""
    from pyarrow import fs as pafs

    base, inner = filesystem, path
    while isinstance(base, pafs.SubTreeFileSystem):
        inner = f"{base.base_path.rstrip('/')}/{inner.lstrip('/')}"
        base = base.base_fs
    if isinstance(base, pafs.LocalFileSystem):
        return Location(LOCAL, Path(inner))
    store = ArrowStorage(filesystem, prefix)
    return Location(store, store.path(path))


def _prefix(uri: str, path: str) -> str:
    """What a URI has before its filesystem path (``s3://``, ``hdfs://host:8020``)."""
    bare = uri.split("?", 1)[0].split("#", 1)[0].rstrip("/")
    stem = path.rstrip("/")
    if stem and bare.endswith(stem):
        return bare[: len(bare) - len(stem)]
    return uri.split("://", 1)[0] + "://"


def _first_line(err: BaseException) -> str:
    lines = str(err).strip().splitlines()
    return lines[0] if lines else type(err).__name__



# --------------------------------------------------------------------------------- the local disk


class LocalStorage(Storage):
    """This machine's disk, with the checks of :mod:`scenetext.imageio` (see the module notes)."""

    local = True

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LocalStorage)

    def __hash__(self) -> int:
        return hash(LocalStorage)

    def __repr__(self) -> str:
        return "LocalStorage()"

    def path(self, text: str) -> PurePath:
        return Path(text)

    def show(self, path: PurePath) -> str:
        return str(path)

    def is_dir(self, path: PurePath) -> bool:
        return os.path.isdir(path)

    def walk_files(self, folder: PurePath, recursive: bool) -> tuple[list[PurePath], list[Failure]]:
        found: list[PurePath] = []
        problems: list[Failure] = []

        def unreadable(err: OSError) -> None:
            problems.append(Failure(str(err.filename or folder), f"cannot read folder ({err.strerror or err})"))

        for root, dirs, files in os.walk(folder, onerror=unreadable):
            dirs[:] = sorted(d for d in dirs if recursive and not d.startswith("."))
            found += [Path(root) / name for name in sorted(files)]
        return found, problems

    def file_identity(self, path: PurePath) -> Hashable:
        from .imageio import check_regular_file

        info = check_regular_file(path)
        return (info.st_dev, info.st_ino)

    def entry(self, path: PurePath) -> Entry | None:
        try:
            info = os.lstat(path)
        except OSError:
            return None
        return Entry((info.st_dev, info.st_ino), stat.S_ISREG(info.st_mode))

    def within(self, path: PurePath, folder: PurePath) -> bool:
        return Path(os.path.realpath(path)).is_relative_to(os.path.realpath(folder))

    def is_file(self, path: PurePath) -> bool:
        return os.path.isfile(path)

    def read_head(self, path: PurePath, size: int) -> bytes:
        from .imageio import read_file_head

        return read_file_head(path, size)

    def read_bytes(self, path: PurePath) -> bytes:
        from .imageio import check_regular_file

        check_regular_file(path)
        return Path(path).read_bytes()

    def decode(self, path: PurePath) -> "DecodedImage":
        from .imageio import decode_image

        return decode_image(path)

    def write_bytes(self, path: PurePath, data: bytes) -> None:
        from .imageio import atomic_write_bytes

        atomic_write_bytes(path, data)

    def open_log(self, path: PurePath, kept: bytes, rewrite: bool) -> RecordLog:
        if rewrite:
            self.write_bytes(path, kept)
        return _AppendLog(os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644))

    def remove_leftovers(self, folder: PurePath, names: set[str]) -> int:
        from .imageio import leftover_target

        try:
            entries = list(os.scandir(folder))
        except OSError:
            return 0
        removed = 0
        for entry in entries:
            if leftover_target(entry.name) in names and entry.is_file(follow_symlinks=False):
                try:
                    os.unlink(entry.path)
                    removed += 1
                except OSError:
                    pass
        return removed

    def make_dir(self, path: PurePath) -> None:
        from .imageio import check_writable_dir

        check_writable_dir(path)


class _AppendLog(RecordLog):
    """A local file open for appending: a record that cannot be written whole is cut off again."""

    def __init__(self, fd: int):
        self.fd: int | None = fd

    def append(self, data: bytes) -> None:
        if self.fd is None:
            raise OSError("the results file is closed")
        size = os.fstat(self.fd).st_size
        try:
            _append(self.fd, data)
        except OSError:
            with contextlib.suppress(OSError):
                os.ftruncate(self.fd, size)
            raise

    def close(self) -> None:
        if self.fd is not None:
            fd, self.fd = self.fd, None
            try:
                os.fsync(fd)
            except OSError:
                pass
            finally:
                os.close(fd)


def _append(fd: int, data: bytes) -> None:
    """Write all of ``data`` to the file descriptor ``fd``."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


#: The local disk.
LOCAL = LocalStorage()


# --------------------------------------------------------------------------------- pyarrow filesystems


class ArrowStorage(Storage):
    """A pyarrow filesystem other than the local one, e.g. ``S3FileSystem``; paths are
    :class:`~pathlib.PurePosixPath` objects in it and are shown as ``prefix + path``. It pickles
    (with its filesystem), so Ray actors get it as it is."""

    def __init__(self, filesystem: Any, prefix: str):
        self.fs = filesystem
        self.prefix = prefix
        self._holding = False  # within listing(): what was listed is remembered
        self._listed: list[PurePath] = []  # folders whose whole contents are in _known
        self._known: dict[str, tuple[Any, int | None]] = {}  # path: (FileType, size)

    def __getstate__(self) -> dict:
        return {"fs": self.fs, "prefix": self.prefix}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["fs"], state["prefix"])

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ArrowStorage) and other.prefix == self.prefix and other.fs.equals(self.fs)

    def __hash__(self) -> int:
        return hash((ArrowStorage, self.prefix, self.fs.type_name))

    def __repr__(self) -> str:
        return f"ArrowStorage({self.fs.type_name!r}, {self.prefix!r})"

    def path(self, text: str) -> PurePath:
        return PurePosixPath(text)

    def show(self, path: PurePath) -> str:
        return f"{self.prefix}{path}"

    @contextlib.contextmanager
    def listing(self, folder: PurePath | None) -> Iterator[None]:
        from pyarrow import fs as pafs

        infos = None
        if folder is not None:
            with contextlib.suppress(OSError):  # asked file by file then, and a failure is reported there
                infos = self.fs.get_file_info(pafs.FileSelector(str(folder), recursive=True, allow_not_found=True))
        self._holding = True
        if infos is not None:
            self._remember(folder, infos, whole=True)
        try:
            yield
        finally:
            self._holding, self._listed, self._known = False, [], {}

    def _remember(self, folder: PurePath, infos: list, whole: bool) -> None:
        """Keep what a listing of ``folder`` found (``whole``: everything under it, at any depth)."""
        if whole:
            self._listed.append(folder)
        self._known.update((str(PurePosixPath(info.path)), (info.type, info.size)) for info in infos)

    def _info(self, path: PurePath) -> Any:
        """``path``'s ``FileInfo``: from the listing held, where it covers ``path``, else asked for."""
        from pyarrow import fs as pafs

        known = self._known.get(str(path))
        if known is not None:
            return pafs.FileInfo(str(path), type=known[0], size=known[1])
        if any(path.is_relative_to(folder) and path != folder for folder in self._listed):
            return pafs.FileInfo(str(path), type=pafs.FileType.NotFound)
        return self.fs.get_file_info(str(path))

    def _kind(self, path: PurePath) -> Any:
        from pyarrow import fs as pafs

        return pafs.FileType(self._info(path).type)

    def map(self, check: Callable[[Any], Any], items: list) -> list:
        from concurrent.futures import ThreadPoolExecutor

        if len(items) < 2:
            return [check(item) for item in items]
        with ThreadPoolExecutor(min(CHECK_THREADS, len(items))) as pool:
            return list(pool.map(check, items))

    def is_dir(self, path: PurePath) -> bool:
        from pyarrow import fs as pafs

        try:
            return self._kind(path) == pafs.FileType.Directory
        except OSError:
            return False

    def walk_files(self, folder: PurePath, recursive: bool) -> tuple[list[PurePath], list[Failure]]:
        from pyarrow import fs as pafs

        try:
            infos = self.fs.get_file_info(pafs.FileSelector(str(folder), recursive=recursive))
        except OSError as err:
            return [], [Failure(self.show(folder), f"cannot read folder ({_first_line(err)})")]
        if self._holding:  # the files found need no request each to be checked
            self._remember(folder, infos, whole=recursive)
        found = []
        for info in infos:
            if info.type == pafs.FileType.Directory:
                continue
            path = PurePosixPath(info.path)
            try:
                parts = path.relative_to(folder).parts
            except ValueError:  # not under the folder as asked for: not one of its files
                continue
            if not any(part.startswith(".") for part in parts[:-1]):  # os.walk's order: files first
                found.append((tuple((1, part) for part in parts[:-1]) + ((0, parts[-1]),), path))
        return [path for _, path in sorted(found)], []

    def _file_info(self, path: PurePath) -> Any:
        """The ``FileInfo`` of the regular file ``path``; ``ImageLoadError`` for anything else."""
        from pyarrow import fs as pafs

        from .imageio import ImageLoadError

        try:
            info = self._info(path)
        except OSError as err:
            raise ImageLoadError(self.show(path), f"cannot read file ({_first_line(err)})") from None
        if info.type == pafs.FileType.NotFound:
            raise ImageLoadError(self.show(path), "file not found")
        if info.type == pafs.FileType.Directory:
            raise ImageLoadError(self.show(path), "is a directory, not a file")
        if info.type != pafs.FileType.File:
            raise ImageLoadError(self.show(path), "not a regular file (unknown type), not read")
        return info

    def file_identity(self, path: PurePath) -> Hashable:
        self._file_info(path)
        return (self.prefix, str(path))

    def entry(self, path: PurePath) -> Entry | None:
        from pyarrow import fs as pafs

        try:
            kind = self._kind(path)
        except OSError:
            return None
        if kind == pafs.FileType.NotFound:
            return None
        return Entry((self.prefix, str(path)), kind == pafs.FileType.File)

    def within(self, path: PurePath, folder: PurePath) -> bool:
        return path.is_relative_to(folder)

    def is_file(self, path: PurePath) -> bool:
        from pyarrow import fs as pafs

        try:
            return self._kind(path) == pafs.FileType.File
        except OSError:
            return False

    def _checked_size(self, path: PurePath) -> int:
        """The size of the regular file ``path`` (``ImageLoadError`` for anything else, or a file
        over :data:`MAX_OBJECT_BYTES`)."""
        from .imageio import ImageLoadError

        size = self._file_info(path).size or 0
        if size > MAX_OBJECT_BYTES:
            raise ImageLoadError(self.show(path), f"file too large to read ({size} bytes, at most "
                                                  f"{MAX_OBJECT_BYTES} are read from {self.prefix})")
        return size

    def read_head(self, path: PurePath, size: int) -> bytes:
        from .imageio import ImageLoadError

        if self._checked_size(path) == 0:
            raise ImageLoadError(self.show(path), "empty file")
        with self.fs.open_input_file(str(path)) as stream:
            return stream.read(size)

    def read_bytes(self, path: PurePath) -> bytes:
        if self._checked_size(path) == 0:
            return b""
        with self.fs.open_input_stream(str(path)) as stream:
            return stream.read()

    def decode(self, path: PurePath) -> "DecodedImage":
        from .imageio import ImageLoadError, decode_bytes

        try:
            data = self.read_bytes(path)
        except OSError as err:
            raise ImageLoadError(self.show(path), f"cannot read file ({_first_line(err)})") from None
        return decode_bytes(data, self.show(path))

    def write_bytes(self, path: PurePath, data: bytes) -> None:
        try:
            self._write_whole(path, data)
        except FileNotFoundError:  # a filesystem with real folders, and this one not made yet
            self.fs.create_dir(str(path.parent), recursive=True)
            self._write_whole(path, data)

    def _write_whole(self, path: PurePath, data: bytes) -> None:
        """One whole-object write: the object appears when the stream is closed, after all of ``data``."""
        stream = self.fs.open_output_stream(str(path))
        try:
            stream.write(data)
        except BaseException:
            with contextlib.suppress(Exception):
                stream.close()
                self.fs.delete_file(str(path))
            raise
        stream.close()

    def open_log(self, path: PurePath, kept: bytes, rewrite: bool) -> RecordLog:
        return _WholeObjectLog(self, path, kept, rewrite)

    def remove_leftovers(self, folder: PurePath, names: set[str]) -> int:
        return 0  # whole-object writes leave no temporary files

    def make_dir(self, path: PurePath) -> None:
        from pyarrow import fs as pafs

        try:
            kind = self._kind(path)
        except OSError as err:
            raise OSError(f"{self.show(path)}: cannot read this location ({_first_line(err)})") from None
        if kind not in (pafs.FileType.NotFound, pafs.FileType.Directory):
            raise OSError(f"{self.show(path)}: exists and is not a directory")
        if kind == pafs.FileType.NotFound:
            try:
                self.fs.create_dir(str(path), recursive=True)
            except OSError as err:
                raise OSError(f"{self.show(path)}: cannot create directory ({_first_line(err)})") from None


class _WholeObjectLog(RecordLog):
    """``results.jsonl`` on a filesystem that cannot append: kept in memory and written whole on close."""

    def __init__(self, store: ArrowStorage, path: PurePath, kept: bytes, rewrite: bool):
        self.store, self.path = store, path
        self.parts: list[bytes] = [kept]
        self.changed = rewrite

    def append(self, data: bytes) -> None:
        self.parts.append(data)
        self.changed = True

    def close(self) -> None:
        if self.changed:
            self.changed = False
            self.store.write_bytes(self.path, b"".join(self.parts))
