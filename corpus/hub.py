"""Download SLDBench's parquet files from the Hugging Face hub into the local cache, through ``huggingface_hub``.

The dataset ``pkuHaowei/sldbench`` has one config per task with splits ``train`` and ``test``; the hub serves its
parquet conversion at the revision ``refs/convert/parquet``, one file per split::

    {HF_ENDPOINT}/datasets/pkuHaowei/sldbench/resolve/refs%2Fconvert%2Fparquet/<config>/<split>/0000.parquet

``huggingface_hub.hf_hub_download`` fetches each file (``repo_type="dataset"``, the revision pinned by
``HubClient(revision=...)``) with the library's own retries and cache (``HF_HOME`` / ``HF_HUB_CACHE``), and reads
``HF_ENDPOINT``, ``HF_TOKEN`` and ``HF_HUB_OFFLINE`` the way every other user of the hub configures them. The
files are then copied into sld's own cache folder, all splits or none. For example::

    HF_ENDPOINT=http://127.0.0.1:8080 sld corpus show moe_scaling_law
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path

from .errors import HubError

DATASET = "pkuHaowei/sldbench"
# The hub's parquet conversion of the dataset. A commit hash of that ref pins it exactly; the commit a download
# resolved to is recorded in ``HubClient.source`` so that a run names the data it saw.
REVISION = "refs/convert/parquet"
SPLITS = ("train", "test")

_FIX = "Pass --corpus PATH or set SLD_CORPUS to a local copy of the dataset"
_PARQUET_MAGIC = b"PAR1"
# The library's cache keeps each file under snapshots/<commit hash>/<path in the repository>.
_SNAPSHOT = re.compile(r"[\\/]snapshots[\\/]([0-9a-f]{40})[\\/]")


class HubClient:
    """Fetch the parquet files of one Hugging Face dataset with ``huggingface_hub``.

    Parameters
    ----------
    endpoint : str, optional
        The hub or a mirror of it; default the library's (``$HF_ENDPOINT``, else ``https://huggingface.co``).
    dataset : str, default "pkuHaowei/sldbench"
        The dataset's repository id.
    revision : str, default "refs/convert/parquet"
        Branch, ref or commit hash to download from.
    token : str, optional
        Access token; default the library's (``$HF_TOKEN``, then a saved login).
    cache_dir : str or Path, optional
        The library's download cache; default its own (``$HF_HUB_CACHE``, under ``$HF_HOME``).

    Examples
    --------
    >>> HubClient(endpoint="http://mirror.test").filename("moe_scaling_law", "train")
    'moe_scaling_law/train/0000.parquet'

    """

    def __init__(
        self,
        *,
        endpoint: str | None = None,
        dataset: str = DATASET,
        revision: str = REVISION,
        token: str | None = None,
        cache_dir: str | Path | None = None,
    ) -> None:
        self.endpoint = endpoint.rstrip("/") if endpoint else None
        self.dataset = dataset
        self.revision = revision
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self._token = token
        self._commits: dict[str, str] = {}

    def __repr__(self) -> str:
        where = self.endpoint or "$HF_ENDPOINT"
        return f"HubClient(endpoint={where!r}, dataset={self.dataset!r}, revision={self.revision!r})"

    def source(self, config: str) -> str:
        """Return the provenance label of a config: ``hub:<dataset>/<config>``, with ``@<commit>`` once known."""
        commit = self._commits.get(config)
        return f"hub:{self.dataset}/{config}" + (f"@{commit}" if commit else "")

    def filename(self, config: str, split: str) -> str:
        """Return the path of a config's split inside the dataset repository at ``revision``."""
        return f"{config}/{split}/0000.parquet"

    def download(self, config: str, dest: Path, *, splits: Sequence[str] = SPLITS) -> dict[str, Path]:
        """Download a config's splits to ``dest/<split>.parquet``, all of them or none.

        Parameters
        ----------
        config : str
            The config (an SLDBench task name).
        dest : Path
            Folder to write to; created when missing.
        splits : sequence of str, default ("train", "test")
            Splits to fetch.

        Returns
        -------
        dict of str to Path
            Split name to the written file.

        Raises
        ------
        HubError
            Offline mode with nothing cached, a network failure, an HTTP error, a missing split, or a reply that
            is not parquet. Nothing is written to ``dest`` unless every split arrived.

        """
        dest.mkdir(parents=True, exist_ok=True)
        written: dict[str, Path] = {}
        # Every split is copied to a temporary file first; all are renamed into place only when all arrived, so
        # sld's cache never holds a task with one split missing.
        with ExitStack() as renames:
            for split in splits:
                cached, where = self._fetch(config, split)
                _check_parquet(cached, where)
                target = dest / f"{split}.parquet"
                tmp = renames.enter_context(_atomic(target))
                shutil.copyfile(cached, tmp)
                written[split] = target
        return written

    def _fetch(self, config: str, split: str) -> tuple[Path, str]:
        """Return the library's cached copy of one split's file (downloaded when needed) and where it is from."""
        # Imported here: `import sld` stays light, and the library reads the HF_* variables when first imported.
        from huggingface_hub import constants, hf_hub_download
        from huggingface_hub.errors import (
            EntryNotFoundError,
            GatedRepoError,
            HfHubHTTPError,
            LocalEntryNotFoundError,
            OfflineModeIsEnabled,
            RepositoryNotFoundError,
            RevisionNotFoundError,
        )

        where = f"{self.endpoint or constants.ENDPOINT} {self.dataset}/{self.filename(config, split)}@{self.revision}"
        refused = (
            f"{where} refused access ({{reason}}) for SLDBench task {config!r}. Set HF_TOKEN to a Hugging Face token "
            f"that can read the dataset, or pass --corpus PATH or set SLD_CORPUS to a local copy of it."
        )
        try:
            path = Path(
                hf_hub_download(
                    self.dataset,
                    self.filename(config, split),
                    repo_type="dataset",
                    revision=self.revision,
                    endpoint=self.endpoint,
                    token=self._token,
                    cache_dir=self.cache_dir,
                )
            )
        # The order matters: LocalEntryNotFoundError is an EntryNotFoundError, and all but it are HfHubHTTPErrors.
        except (LocalEntryNotFoundError, OfflineModeIsEnabled) as exc:
            # Raised offline (HF_HUB_OFFLINE), or when the hub could not be reached, with nothing cached.
            offline = " (HF_HUB_OFFLINE is set)" if constants.HF_HUB_OFFLINE else ""
            raise HubError(
                f"cannot download {where} for SLDBench task {config!r}{offline}, and it is not in the Hugging Face "
                f"cache ({_reason(exc)}). {_FIX}, or unset HF_HUB_OFFLINE and check the network and HF_ENDPOINT."
            ) from exc
        except (GatedRepoError, RepositoryNotFoundError) as exc:
            # The hub answers 401 for a private or gated repository and for one that does not exist.
            raise HubError(refused.format(reason=_reason(exc))) from exc
        except RevisionNotFoundError as exc:
            raise HubError(f"{where}: no revision {self.revision!r} ({_reason(exc)}). {_FIX}.") from exc
        except EntryNotFoundError as exc:
            raise HubError(f"{where}: {self.dataset} has no split {split!r} for config {config!r}. {_FIX}.") from exc
        except HfHubHTTPError as exc:
            status = exc.response.status_code if exc.response is not None else None
            if status in (401, 403):
                raise HubError(refused.format(reason=f"HTTP {status}")) from exc
            raise HubError(f"cannot download {where} for SLDBench task {config!r} ({_reason(exc)}). {_FIX}.") from exc
        commit = _SNAPSHOT.search(str(path))
        if commit:
            self._commits[config] = commit.group(1)
        return path, where


def _reason(exc: Exception) -> str:
    """Return the exception's type and the first line of its message (the library's messages run to several)."""
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def _check_parquet(path: Path, where: str) -> None:
    """Refuse a reply that is not a parquet file (an HTML error page, a truncated body)."""
    size = path.stat().st_size
    with path.open("rb") as handle:
        head = handle.read(4)
        handle.seek(max(size - 4, 0))
        tail = handle.read(4)
    if size < 12 or head != _PARQUET_MAGIC or tail != _PARQUET_MAGIC:
        raise HubError(f"{where} did not return a parquet file ({size} bytes). {_FIX}.")


@contextmanager
def _atomic(target: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it onto ``target`` only if the block succeeds."""
    handle, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(handle)
    tmp = Path(name)
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
