from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sld.corpus.proxy.data import (
    eval_offsets,
    is_validation_file,
    list_source_files,
    load_corpus,
    stdlib_root,
)
from sld.corpus.proxy.errors import ProxyError

from .conftest import write_source_tree


def test_split_is_deterministic_and_disjoint(tmp_path: Path) -> None:
    root = write_source_tree(tmp_path)
    first, second = load_corpus(root, val_fraction=0.2), load_corpus(root, val_fraction=0.2)
    assert first.sha256 == second.sha256
    np.testing.assert_array_equal(first.train, second.train)
    assert first.train_files and first.val_files
    assert not set(first.train_files) & set(first.val_files)
    assert list(first.train_files) == sorted(first.train_files)
    assert first.train.dtype == np.uint8


def test_adding_a_file_moves_no_other_file(tmp_path: Path) -> None:
    root = write_source_tree(tmp_path)
    before = load_corpus(root, val_fraction=0.2)
    (root / "zzz_new.py").write_text("x = 1\n")
    after = load_corpus(root, val_fraction=0.2)
    assert set(before.val_files) <= set(after.val_files)
    assert set(before.train_files) <= set(after.train_files)
    assert before.sha256 != after.sha256


def test_split_depends_on_the_path_only() -> None:
    assert is_validation_file("json/decoder.py", 0.1) == is_validation_file("json/decoder.py", 0.1)
    assert not is_validation_file("json/decoder.py", 0.0)
    assert is_validation_file("json/decoder.py", 1.0)


def test_excluded_folders_are_skipped(tmp_path: Path) -> None:
    for rel in ("a.py", "site-packages/b.py", "test/c.py", "pkg/__pycache__/d.py", "pkg/e.py", "f.txt"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("pass\n")
    assert list_source_files(tmp_path) == ["a.py", "pkg/e.py"]


def test_too_few_files_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "only.py").write_text("pass\n")
    with pytest.raises(ProxyError, match="too few"):
        load_corpus(tmp_path)


def test_stdlib_files_are_found_in_sorted_order() -> None:
    files = list_source_files(stdlib_root())
    assert len(files) > 100
    assert files == sorted(files)
    assert "json/decoder.py" in files
    assert not any(part in ("site-packages", "test") for rel in files for part in rel.split("/")[:-1])


def test_eval_offsets_are_fixed_and_in_range() -> None:
    offsets = eval_offsets(1000, block_size=16, eval_tokens=160)
    assert len(offsets) == 10 and offsets[0] == 0 and offsets[-1] == 1000 - 17
    np.testing.assert_array_equal(offsets, eval_offsets(1000, block_size=16, eval_tokens=160))
    with pytest.raises(ProxyError):
        eval_offsets(10, block_size=16, eval_tokens=160)
