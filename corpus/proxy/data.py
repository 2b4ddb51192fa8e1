"""The proxy runs' text: the Python standard library's source, read from the running interpreter.

Every machine with Python has it, so proxy sweeps need no download. Files are the ``*.py`` under
``sysconfig.get_paths()["stdlib"]`` (without ``site-packages``, whose contents depend on what is installed,
and without ``test``/``tests``/``idlelib`` folders, which some distributions strip), in sorted order of their
relative POSIX paths; tokens are bytes (vocabulary 256). A file belongs to the validation split when the
SHA-256 of its relative path falls in the first ``val_fraction`` of hash space, so the split is the same
on every machine with the same Python version and does not move when files are added elsewhere.
"""

from __future__ import annotations

import hashlib
import sysconfig
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from sld.corpus.proxy.errors import ProxyError

EXCLUDED_DIRS = frozenset({"site-packages", "dist-packages", "test", "tests", "idlelib", "__pycache__"})
# Joins files so that a training window can span a boundary without merging two files' last/first lines.
FILE_SEPARATOR = b"\n\n"


@dataclass(frozen=True)
class TextCorpus:
    """Byte tokens of the train and validation splits.

    Attributes
    ----------
    train, val : ndarray of uint8, shape (n_tokens,)
        Concatenated file bytes of each split.
    train_files, val_files : tuple of str
        Relative POSIX paths in each split, in corpus order.
    sha256 : str
        Hash of both splits' bytes and file lists: the data version recorded with each run.
    root : str
        The directory the files were read from.

    """

    train: NDArray[np.uint8]
    val: NDArray[np.uint8]
    train_files: tuple[str, ...]
    val_files: tuple[str, ...]
    sha256: str
    root: str


def stdlib_root() -> Path:
    """Return the running interpreter's standard-library directory."""
    return Path(sysconfig.get_paths()["stdlib"])


def list_source_files(root: Path) -> list[str]:
    """Return the sorted relative POSIX paths of the ``*.py`` files under ``root``, minus excluded folders."""
    paths = []
    for path in root.rglob("*.py"):
        rel = path.relative_to(root)
        if EXCLUDED_DIRS.isdisjoint(rel.parts[:-1]) and path.is_file():
            paths.append(rel.as_posix())
    return sorted(paths)


def is_validation_file(rel_path: str, val_fraction: float) -> bool:
    """Return whether a file belongs to the validation split (by the SHA-256 of its relative path)."""
    digest = hashlib.sha256(rel_path.encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64 < val_fraction


def load_corpus(root: Path | None = None, *, val_fraction: float = 0.1) -> TextCorpus:
    """Read the source files under ``root`` (default: the standard library) into byte-token splits.

    Parameters
    ----------
    root : Path, optional
        Directory to read ``*.py`` files from; defaults to :func:`stdlib_root`.
    val_fraction : float, default 0.1
        Expected share of files held out for validation.

    Returns
    -------
    TextCorpus
        Both splits, their file lists and a content hash.

    Raises
    ------
    ProxyError
        When either split is empty.

    """
    root = stdlib_root() if root is None else Path(root)
    files = list_source_files(root)
    splits: dict[bool, list[str]] = {False: [], True: []}
    for rel in files:
        splits[is_validation_file(rel, val_fraction)].append(rel)
    if not splits[False] or not splits[True]:
        raise ProxyError(
            f"{root} has {len(files)} *.py files, too few for a train/validation split; "
            "point the proxy trainer at a directory with more source files"
        )
    hasher = hashlib.sha256()
    arrays = {}
    for is_val, names in splits.items():
        chunks = []
        for rel in names:
            chunks.append((root / rel).read_bytes())
            hasher.update(f"{'val' if is_val else 'train'}:{rel}\n".encode())
        data = FILE_SEPARATOR.join(chunks)
        hasher.update(data)
        arrays[is_val] = np.frombuffer(data, dtype=np.uint8)
    return TextCorpus(
        train=arrays[False],
        val=arrays[True],
        train_files=tuple(splits[False]),
        val_files=tuple(splits[True]),
        sha256=hasher.hexdigest(),
        root=str(root),
    )


def eval_offsets(n_tokens: int, *, block_size: int, eval_tokens: int) -> NDArray[np.int64]:
    """Return evenly spaced window starts that cover ``eval_tokens`` of a split of ``n_tokens`` tokens.

    The same offsets are used by every run of a sweep, so their validation losses are comparable.
    """
    n_windows = max(1, eval_tokens // block_size)
    last = n_tokens - block_size - 1
    if last < 0:
        raise ProxyError(f"the validation split has {n_tokens} tokens, fewer than block_size={block_size} + 1")
    return np.linspace(0, last, num=n_windows).astype(np.int64)
