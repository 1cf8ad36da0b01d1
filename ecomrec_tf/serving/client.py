"""Clients for TF Serving's REST and gRPC predict APIs: timeouts, retries with backoff, batching.

    >>> client = RestClient("http://localhost:8501", "intent")           # doctest: +SKIP
    >>> client.predict({"text": ["where is my order", "cancel it"]})      # doctest: +SKIP
    {"label": [...], "probabilities": [[...], [...]], ...}

Both take and return columns: `{input name: values with the batch first}` in, `{output name: numpy
array}` out. Long batches are split into requests of at most `batch_size` rows and the answers joined.
"""

from __future__ import annotations

import base64
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable

import numpy as np

RETRIED_HTTP = {429, 500, 502, 503, 504}


class ServingError(RuntimeError):
    """A request TF Serving refused (with its message), or one that failed after every retry."""


def _batches(inputs: dict, batch_size: int) -> list[dict]:
    sizes = {len(values) for values in inputs.values()}
    if len(sizes) != 1:
        raise ValueError(
            f"inputs must have the same batch size, got { ({k: len(v) for k, v in inputs.items()}) }"
        )
    size = sizes.pop()
    return [
        {key: values[i : i + batch_size] for key, values in inputs.items()}
        for i in range(0, max(size, 1), batch_size)  # an empty batch: one request, answered with 0 rows
    ]


def _b64(value):
    """TF Serving's JSON for bytes (`{"b64": ...}`), in nested lists; other values as they are."""
    if isinstance(value, bytes):
        return {"b64": base64.b64encode(value).decode("ascii")}
    if isinstance(value, list):
        return [_b64(item) for item in value]
    return value


def _unb64(value):
    """Bytes for every `{"b64": ...}` in a JSON answer."""
    if isinstance(value, dict):
        if set(value) == {"b64"}:
            return base64.b64decode(value["b64"])
        return {key: _unb64(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_unb64(item) for item in value]
    return value


def _join(parts: list[dict]) -> dict[str, np.ndarray]:
    return {key: np.concatenate([np.asarray(part[key]) for part in parts]) for key in parts[0]}


class _Client:
    def __init__(self, timeout: float, retries: int, backoff: float, batch_size: int):
        self.timeout, self.retries, self.backoff, self.batch_size = timeout, retries, backoff, batch_size

    def _with_retries(self, call: Callable, retriable: Callable[[Exception], bool]):
        for attempt in range(self.retries + 1):
            try:
                return call()
            except Exception as error:  # noqa: BLE001  (sorted by `retriable`)
                if not retriable(error) or attempt == self.retries:
                    raise ServingError(f"{type(self).__name__}: {error}") from error
                time.sleep(self.backoff * 2**attempt)

    def predict(self, inputs: dict, signature: str = "serving_default") -> dict[str, np.ndarray]:
        """Runs `signature` on `inputs` (columns), in requests of at most `batch_size` rows."""
        return _join([self._predict(part, signature) for part in _batches(inputs, self.batch_size)])


class RestClient(_Client):
    """TF Serving's REST API (`POST /v1/models/<model>[/versions/<v>]:predict`).

    Args:
        base_url: e.g. `http://localhost:8501`.
        model: the model's name in TF Serving.
        version: a version number; None asks for the newest served one.
        form: `"inputs"` (columnar request and response) or `"instances"` (one row per example).
        timeout: seconds per request.
        retries: extra attempts after a connection error, timeout, 429 or 5xx; 4xx errors are not retried.
        backoff: seconds before the first retry, doubling after each.
        batch_size: most rows per request.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        version: int | None = None,
        form: str = "inputs",
        timeout: float = 10.0,
        retries: int = 2,
        backoff: float = 0.1,
        batch_size: int = 64,
    ):
        super().__init__(timeout, retries, backoff, batch_size)
        if form not in ("inputs", "instances"):
            raise ValueError(f"form must be 'inputs' or 'instances', got {form!r}")
        path = f"/v1/models/{model}" + (f"/versions/{version}" if version is not None else "")
        self.url, self.form = base_url.rstrip("/") + path + ":predict", form

    def _body(self, inputs: dict, signature: str) -> dict:
        columns = {key: _b64(np.asarray(values).tolist()) for key, values in inputs.items()}
        if self.form == "inputs" or not any(columns.values()):  # no rows: columns say it
            return {"signature_name": signature, "inputs": columns}
        rows = [dict(zip(columns, row)) for row in zip(*columns.values())]
        return {"signature_name": signature, "instances": rows}

    def _predict(self, inputs: dict, signature: str) -> dict:
        data = json.dumps(self._body(inputs, signature)).encode()
        request = urllib.request.Request(self.url, data=data, headers={"Content-Type": "application/json"})

        def call():
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.loads(response.read())

        def retriable(error):
            if isinstance(error, urllib.error.HTTPError):
                if error.code not in RETRIED_HTTP:
                    message = json.loads(error.read() or b"{}").get("error", error.reason)
                    raise ServingError(f"{self.url}: HTTP {error.code}: {message}") from None
                return True
            return isinstance(error, (urllib.error.URLError, TimeoutError, ConnectionError))

        answer = _unb64(self._with_retries(call, retriable))
        if "outputs" in answer:  # columnar; a single output comes bare
            outputs = answer["outputs"]
            return outputs if isinstance(outputs, dict) else {"output": outputs}
        rows = answer["predictions"]  # one row per instance; a single output comes bare
        if rows and isinstance(rows[0], dict):
            return {key: [row[key] for row in rows] for key in rows[0]}
        return {"output": rows}


class GrpcClient(_Client):
    """TF Serving's gRPC `PredictionService.Predict`, with the same arguments as `RestClient` (target:
    `host:8500`)."""

    def __init__(
        self,
        target: str,
        model: str,
        version: int | None = None,
        timeout: float = 10.0,
        retries: int = 2,
        backoff: float = 0.1,
        batch_size: int = 64,
    ):
        import grpc
        from tensorflow_serving.apis import prediction_service_pb2_grpc

        super().__init__(timeout, retries, backoff, batch_size)
        self.model, self.version = model, version
        self.channel = grpc.insecure_channel(target)
        self.stub = prediction_service_pb2_grpc.PredictionServiceStub(self.channel)

    def _predict(self, inputs: dict, signature: str) -> dict:
        import grpc
        import tensorflow as tf
        from tensorflow_serving.apis import predict_pb2

        request = predict_pb2.PredictRequest()
        request.model_spec.name, request.model_spec.signature_name = self.model, signature
        if self.version is not None:
            request.model_spec.version.value = self.version
        for key, values in inputs.items():
            values = np.asarray(values)
            if values.dtype.kind in "US" or values.size == 0 and values.dtype == np.float64:
                values = values.astype(object)  # texts, bytes, and an empty list (texts, most often)
            request.inputs[key].CopyFrom(
                tf.make_tensor_proto(values, dtype=tf.string if values.dtype == object else None)
            )

        def retriable(error):
            transient = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
            if isinstance(error, grpc.RpcError) and error.code() not in transient:
                raise ServingError(f"{self.model}: gRPC {error.code().name}: {error.details()}") from None
            return isinstance(error, grpc.RpcError)

        response = self._with_retries(lambda: self.stub.Predict(request, timeout=self.timeout), retriable)
        return {key: tf.make_ndarray(value) for key, value in response.outputs.items()}

    def close(self) -> None:
        self.channel.close()
