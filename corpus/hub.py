"""Download SLDBench's parquet files from the Hugging Face hub into the local cache.

The dataset ``pkuHaowei/sldbench`` has one config per task with splits ``train`` and ``test``; the hub
serves its parquet conversion at::

    {HF_ENDPOINT}/datasets/pkuHaowei/sldbench/resolve/refs%2Fconvert%2Fparquet/<config>/<split>/0000.parquet

When that file is missing, the datasets server's listing names the files::

    https://datasets-server.huggingface.co/parquet?dataset=pkuHaowei/sldbench&config=<config>

Environment: ``HF_ENDPOINT`` (a mirror of the hub), ``HF_TOKEN`` (sent as a bearer token),
``HF_HUB_OFFLINE=1`` (never download; fail at once). Files are written to a temporary name and renamed, so a
cache never holds half a file.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx

from .errors import HubError

DATASET = "pkuHaowei/sldbench"
HUB_URL = "https://huggingface.co"
DATASETS_SERVER_URL = "https://datasets-server.huggingface.co"
PARQUET_REVISION = "refs%2Fconvert%2Fparquet"  # refs/convert/parquet, quoted as the hub expects it in a path
SPLITS = ("train", "test")

_FIX = "Pass --corpus PATH or set SLD_CORPUS to a local copy of the dataset"
_PARQUET_MAGIC = b"PAR1"
_TRUE = {"1", "true", "yes", "on"}


class HubClient:
    """Fetch parquet files of one Hugging Face dataset over HTTP.

    Parameters
    ----------
    base_url : str, optional
        The hub; default ``$HF_ENDPOINT``, else ``https://huggingface.co``.
    server_url : str, optional
        The datasets server, asked for the file list only when the conventional file is missing; default
        ``https://datasets-server.huggingface.co`` when ``base_url`` is the default hub, else ``base_url``
        (a mirror is expected to serve ``/parquet`` itself, or not be asked).
    dataset : str, default "pkuHaowei/sldbench"
        The dataset's repository id.
    token : str, optional
        Bearer token; default ``$HF_TOKEN``.
    offline : bool, optional
        Refuse every download; default from ``$HF_HUB_OFFLINE`` (1, true, yes, on).
    transport : httpx.BaseTransport, optional
        For tests: ``httpx.MockTransport`` or any transport; default httpx's network transport.
    timeout_s : float, default 30.0
        Connect and read timeout of each request.

    Examples
    --------
    >>> client = HubClient(base_url="http://mirror.test")
    >>> client.file_url("moe_scaling_law", "train").removeprefix(client.base_url)
    '/datasets/pkuHaowei/sldbench/resolve/refs%2Fconvert%2Fparquet/moe_scaling_law/train/0000.parquet'

    """

    def __init__(
        self,
        *,
        base_url: str | None = None,
        server_url: str | None = None,
        dataset: str = DATASET,
        token: str | None = None,
        offline: bool | None = None,
        transport: httpx.BaseTransport | None = None,
        timeout_s: float = 30.0,
    ) -> None:
        self.base_url = (base_url or os.environ.get("HF_ENDPOINT") or HUB_URL).rstrip("/")
        default_server = DATASETS_SERVER_URL if self.base_url == HUB_URL else self.base_url
        self.server_url = (server_url or default_server).rstrip("/")
        self.dataset = dataset
        if offline is None:
            offline = os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in _TRUE
        self.offline = offline
        self._token = token if token is not None else os.environ.get("HF_TOKEN") or None
        self._transport = transport
        self._timeout_s = timeout_s

    def __repr__(self) -> str:
        return f"HubClient(base_url={self.base_url!r}, dataset={self.dataset!r}, offline={self.offline})"

    def source(self, config: str) -> str:
        """Return the provenance label of a config, ``hub:<dataset>/<config>``."""
        return f"hub:{self.dataset}/{config}"

    def file_url(self, config: str, split: str) -> str:
        """Return the URL of the first parquet file of a config's split on the hub."""
        repo = f"{self.base_url}/datasets/{self.dataset}"
        return f"{repo}/resolve/{PARQUET_REVISION}/{config}/{split}/0000.parquet"

    def parquet_urls(self, config: str) -> dict[str, list[str]]:
        """Ask the datasets server which parquet files hold a config.

        Parameters
        ----------
        config : str
            The config (an SLDBench task name).

        Returns
        -------
        dict of str to list of str
            Split name to its parquet URLs, in shard order.

        Raises
        ------
        HubError
            Offline mode, a network failure, an HTTP error, or a reply that is not the expected JSON.

        """
        self._check_online(config)
        url = f"{self.server_url}/parquet"
        with self._client() as client:
            response = self._get(client, url, config, params={"dataset": self.dataset, "config": config})
        try:
            files = response.json()["parquet_files"]
            urls: dict[str, list[str]] = {}
            for entry in sorted(files, key=lambda item: str(item.get("filename", item["url"]))):
                if entry.get("config", config) == config:
                    urls.setdefault(str(entry["split"]), []).append(str(entry["url"]))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise HubError(
                f"{url} did not answer with a parquet file list for {self.dataset} config {config!r}. {_FIX}."
            ) from exc
        return urls

    def download(self, config: str, dest: Path, *, splits: Sequence[str] = SPLITS) -> dict[str, Path]:
        """Download a config's splits to ``dest/<split>.parquet``, each written atomically.

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
            Offline mode, a network failure, an HTTP error, a missing split, or a reply that is not parquet.
            Nothing is written to ``dest`` unless every split arrived.

        """
        self._check_online(config)
        dest.mkdir(parents=True, exist_ok=True)
        written: dict[str, Path] = {}
        # Every split goes to a temporary file first; all are renamed into place only when all arrived, so the
        # cache never holds a task with one split missing.
        with self._client() as client, ExitStack() as renames:
            listing: dict[str, list[str]] | None = None
            for split in splits:
                target = dest / f"{split}.parquet"
                tmp = renames.enter_context(_atomic(target))
                url = self.file_url(config, split)
                if self._fetch(client, url, tmp, config, missing_ok=True):
                    _check_parquet(tmp, url)
                else:
                    if listing is None:
                        listing = self.parquet_urls(config)
                    urls = listing.get(split)
                    if not urls:
                        raise HubError(
                            f"{self.dataset} has no split {split!r} for config {config!r} at {self.base_url} "
                            f"(splits listed: {', '.join(sorted(listing)) or 'none'}). {_FIX}."
                        )
                    self._fetch_shards(client, urls, tmp, config)
                written[split] = target
        return written

    def _check_online(self, config: str) -> None:
        if self.offline:
            raise HubError(
                f"HF_HUB_OFFLINE is set, so SLDBench task {config!r} is not downloaded from {self.base_url}. "
                f"{_FIX}, or unset HF_HUB_OFFLINE."
            )

    @contextmanager
    def _client(self) -> Iterator[httpx.Client]:
        headers = {"User-Agent": "sld (scaling-law discovery)"}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        # follow_redirects: the hub answers with a redirect to its file store; httpx drops the token on a
        # redirect to another host.
        with httpx.Client(
            headers=headers, transport=self._transport, timeout=self._timeout_s, follow_redirects=True
        ) as client:
            yield client

    def _get(
        self, client: httpx.Client, url: str, config: str, *, params: dict[str, str] | None = None
    ) -> httpx.Response:
        try:
            response = client.get(url, params=params)
        except httpx.HTTPError as exc:
            raise HubError(
                f"cannot reach {url} for SLDBench task {config!r} ({_reason(exc)}). {_FIX}."
            ) from exc
        _raise_for_status(response, config)
        return response

    def _fetch(
        self, client: httpx.Client, url: str, tmp: Path, config: str, *, missing_ok: bool = False
    ) -> bool:
        """Stream ``url`` into ``tmp``; return False on 404 when ``missing_ok``."""
        try:
            with client.stream("GET", url) as response:
                if missing_ok and response.status_code == 404:
                    return False
                _raise_for_status(response, config)
                with tmp.open("wb") as handle:
                    for chunk in response.iter_bytes():
                        handle.write(chunk)
        except httpx.HTTPError as exc:
            raise HubError(
                f"cannot download {url} for SLDBench task {config!r} ({_reason(exc)}). {_FIX}."
            ) from exc
        return True

    def _fetch_shards(self, client: httpx.Client, urls: Sequence[str], tmp: Path, config: str) -> None:
        """Download each shard and write them, concatenated, as one parquet file."""
        import pyarrow as pa  # only sharded splits need it; pandas imports it lazily too
        import pyarrow.parquet as pq

        tables = []
        for index, url in enumerate(urls):
            shard = tmp.with_name(f"{tmp.name}.{index}")
            try:
                self._fetch(client, url, shard, config)
                _check_parquet(shard, url)
                tables.append(pq.read_table(shard))
            finally:
                shard.unlink(missing_ok=True)
        pq.write_table(pa.concat_tables(tables), tmp)


def _raise_for_status(response: httpx.Response, config: str) -> None:
    if response.is_success:
        return
    url = str(response.request.url)
    status = response.status_code
    if status in (401, 403):
        raise HubError(
            f"{url} refused access (HTTP {status}) for SLDBench task {config!r}. Set HF_TOKEN to a "
            f"Hugging Face token that can read the dataset, or pass --corpus PATH or set SLD_CORPUS to a "
            f"local copy of it."
        )
    raise HubError(f"{url} answered HTTP {status} for SLDBench task {config!r}. {_FIX}.")


def _reason(exc: httpx.HTTPError) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _check_parquet(path: Path, url: str) -> None:
    """Refuse a reply that is not a parquet file (an HTML error page, a truncated body)."""
    size = path.stat().st_size
    with path.open("rb") as handle:
        head = handle.read(4)
        handle.seek(max(size - 4, 0))
        tail = handle.read(4)
    if size < 12 or head != _PARQUET_MAGIC or tail != _PARQUET_MAGIC:
        raise HubError(f"{url} did not return a parquet file ({size} bytes). {_FIX}.")


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
