"""A development server speaking TF Serving's APIs over exports, to try requests and clients locally.

NOT for production: no request batching, no version policy or hot reload, no model config file, no
monitoring; it loads the SavedModels with `tf.saved_model.load` in one Python process. Production is
TF Serving itself (`tensorflow/serving` with `--model_config_file=saved_models/models.config`). What it
answers as TF Serving does:

- REST: `GET /v1/models/<name>[/versions/<v>]` (status), `GET .../metadata` (signature defs),
  `POST .../<name>[/versions/<v>]:predict` in the `instances` (rows) and `inputs` (columns) forms, with
  `{"b64": ...}` for bytes and `{"error": ...}` with HTTP 400 / 404 on a bad request;
- gRPC: `tensorflow.serving.PredictionService` `Predict` and `GetModelMetadata`.
"""

from __future__ import annotations

import base64
import json
import re
import threading
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import grpc
import numpy as np
import tensorflow as tf
import tensorflow_text  # noqa: F401  (the SavedModels' tokenizer ops)
from google.protobuf import json_format
from tensorflow.core.protobuf import meta_graph_pb2, saved_model_pb2
from tensorflow_serving.apis import get_model_metadata_pb2, predict_pb2, prediction_service_pb2_grpc

from ecomrec_tf.export import ExportError, versions
from ecomrec_tf.serving.client import _unb64  # TF Serving's {"b64": ...} JSON for bytes

PATH = re.compile(r"^/v1/models/(?P<name>[^/:]+)(/versions/(?P<version>\d+))?(?P<what>:predict|/metadata)?$")


class NotFound(LookupError):
    """No such model, version or signature."""


def find_exports(path: str | Path) -> dict[str, dict[int, Path]]:
    """`{name: {version: folder}}` under `path`: a version folder (`saved_model.pb` inside), a model
    folder (numbered versions inside), or a base folder of model folders (`saved_models/`)."""
    path = Path(path)
    if not path.is_dir():
        raise ExportError(f"{path}: no such folder")
    if (path / "saved_model.pb").is_file():
        return {path.parent.name: {int(path.name) if path.name.isdigit() else 1: path}}
    if versions(path):
        return {
            path.name: {
                v: path / str(v) for v in versions(path) if (path / str(v) / "saved_model.pb").is_file()
            }
        }
    found = {
        child.name: find_exports(child)[child.name] for child in sorted(path.iterdir()) if versions(child)
    }
    if not found:
        raise ExportError(f"{path}: no SavedModel here (a version folder, a model folder or saved_models/)")
    return found


def _tensor(values, spec: tf.TensorSpec) -> tf.Tensor:
    return tf.constant(np.asarray(values, dtype=object) if spec.dtype == tf.string else values, spec.dtype)


class DevServer:
    """Serves every version of every export under `path` (see `find_exports`); requests without a
    version get the newest. `fail_first` answers the first N requests 503 / UNAVAILABLE, to try a
    client's retries."""

    def __init__(self, path: str | Path, fail_first: int = 0):
        self.exports = find_exports(path)
        self.models = {
            name: {version: tf.saved_model.load(str(folder)) for version, folder in found.items()}
            for name, found in self.exports.items()
        }
        self.failures_left, self.requests = fail_first, 0
        self.lock = threading.Lock()

    def _should_fail(self) -> bool:
        with self.lock:
            self.requests += 1
            if self.failures_left > 0:
                self.failures_left -= 1
                return True
            return False

    def _version(self, name: str, version: int | None) -> int:
        if name not in self.models:
            raise NotFound(f"Servable not found for request: Latest({name})")
        if version is None:
            return max(self.models[name])
        if version not in self.models[name]:
            raise NotFound(f"Servable not found for request: Specific({name}, {version})")
        return version

    def signature(self, name: str, version: int | None, signature: str):
        """The concrete function of a served signature (the newest version when `version` is None)."""
        version = self._version(name, version)  # NotFound before any lookup by name
        model = self.models[name][version]
        if signature not in model.signatures:
            raise NotFound(f'Serving signature name: "{signature}" not found in signature def')
        return model.signatures[signature]

    def run(self, name: str, version: int | None, signature: str, inputs: dict) -> dict[str, np.ndarray]:
        """Runs a signature on inputs (lists or arrays by input name): numpy outputs by name."""
        function = self.signature(name, version, signature)
        specs = function.structured_input_signature[1]
        missing = set(specs) - set(inputs)
        if missing:
            raise ValueError(f"missing inputs {sorted(missing)}")
        outputs = function(**{key: _tensor(inputs[key], specs[key]) for key in specs})
        return {key: value.numpy() for key, value in outputs.items()}

    def signature_defs(self, name: str, version: int | None) -> meta_graph_pb2.MetaGraphDef:
        """The export's `MetaGraphDef` (its `signature_def` map), read from `saved_model.pb`."""
        folder = self.exports[name][self._version(name, version)]
        saved_model = saved_model_pb2.SavedModel.FromString((folder / "saved_model.pb").read_bytes())
        return saved_model.meta_graphs[0]

    def status(self, name: str, version: int | None) -> dict:
        newest = self._version(name, version)  # NotFound for an unknown model or version
        chosen = [newest] if version is not None else sorted(self.models[name])
        return {
            "model_version_status": [
                {"version": str(v), "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
                for v in chosen
            ]
        }

    def metadata(self, name: str, version: int | None) -> dict:
        version = self._version(name, version)
        signatures = json_format.MessageToDict(
            self.signature_defs(name, version), preserving_proto_field_name=True
        )
        return {
            "model_spec": {"name": name, "signature_name": "", "version": str(version)},
            "metadata": {"signature_def": {"signature_def": signatures.get("signature_def", {})}},
        }

    # --- REST ------------------------------------------------------------------------------------
    def rest(self, host: str = "127.0.0.1", port: int = 0) -> ThreadingHTTPServer:
        """Starts the REST server in a thread (port 0: a free one, `server.server_port`)."""
        server_ = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def _answer(self, code: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _route(self, method: str):
                match = PATH.match(self.path)
                wanted = ":predict" if method == "POST" else (None, "/metadata")
                if not match or (
                    match["what"] != wanted if method == "POST" else match["what"] not in wanted
                ):
                    raise NotFound(f"Malformed request: {method} {self.path}")
                return match["name"], int(match["version"]) if match["version"] else None, match["what"]

            def do_GET(self):  # noqa: N802
                try:
                    name, version, what = self._route("GET")
                    body = server_.metadata(name, version) if what else server_.status(name, version)
                except NotFound as error:
                    return self._answer(404, {"error": str(error)})
                self._answer(200, body)

            def do_POST(self):  # noqa: N802
                try:  # as TF Serving: a body that is not a JSON object is a 400 naming the problem
                    body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                    if not isinstance(body, dict):
                        raise ValueError(f"expected a JSON object, got {type(body).__name__}")
                except ValueError as error:
                    return self._answer(400, {"error": f"JSON Parse error: {error}"})
                if server_._should_fail():
                    return self._answer(503, {"error": "dev server: unavailable (fail_first)"})
                try:
                    name, version, _ = self._route("POST")
                    version = server_._version(name, version)  # an unknown model is a 404 first
                    if "instances" in body:
                        rows = _unb64(body["instances"])
                        inputs = (
                            {key: [row[key] for row in rows] for key in rows[0]}
                            if isinstance(rows[0], dict)
                            else None
                        )
                        if inputs is None:  # one unnamed input: each instance is its value
                            inputs = {_only_input(server_, name, version, body): rows}
                    else:
                        inputs = _unb64(body["inputs"])
                        if not isinstance(inputs, dict):
                            inputs = {_only_input(server_, name, version, body): inputs}
                    outputs = server_.run(
                        name, version, body.get("signature_name", "serving_default"), inputs
                    )
                except NotFound as error:
                    return self._answer(404, {"error": str(error)})
                except (KeyError, IndexError, ValueError, TypeError, tf.errors.OpError) as error:
                    return self._answer(400, {"error": str(error)})
                jsonable = {k: _json_strings(v.tolist(), k.endswith("_bytes")) for k, v in outputs.items()}
                if "instances" in body:
                    size = len(next(iter(jsonable.values())))
                    rows = [{k: v[i] for k, v in jsonable.items()} for i in range(size)]
                    return self._answer(200, {"predictions": rows})
                return self._answer(200, {"outputs": jsonable})

        server = ThreadingHTTPServer((host, port), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return server

    # --- gRPC ------------------------------------------------------------------------------------
    def grpc(self, host: str = "127.0.0.1", port: int = 0) -> tuple[grpc.Server, int]:
        """Starts the gRPC server (`PredictionService`): `(server, port)`."""
        server_ = self

        class Servicer(prediction_service_pb2_grpc.PredictionServiceServicer):
            def Predict(self, request, context):  # noqa: N802
                if server_._should_fail():
                    context.abort(grpc.StatusCode.UNAVAILABLE, "dev server: unavailable (fail_first)")
                inputs = {key: tf.make_ndarray(value) for key, value in request.inputs.items()}
                version = request.model_spec.version.value if request.model_spec.HasField("version") else None
                try:
                    signature = request.model_spec.signature_name or "serving_default"
                    outputs = server_.run(request.model_spec.name, version, signature, inputs)
                except NotFound as error:
                    context.abort(grpc.StatusCode.NOT_FOUND, str(error))
                except (KeyError, ValueError, TypeError, tf.errors.OpError) as error:
                    context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(error))
                response = predict_pb2.PredictResponse()
                for key, value in outputs.items():
                    response.outputs[key].CopyFrom(tf.make_tensor_proto(value))
                return response

            def GetModelMetadata(self, request, context):  # noqa: N802
                version = request.model_spec.version.value if request.model_spec.HasField("version") else None
                try:
                    chosen = server_._version(request.model_spec.name, version)
                    meta_graph = server_.signature_defs(request.model_spec.name, chosen)
                except NotFound as error:
                    context.abort(grpc.StatusCode.NOT_FOUND, str(error))
                response = get_model_metadata_pb2.GetModelMetadataResponse()
                response.model_spec.name = request.model_spec.name
                response.model_spec.version.value = chosen
                signatures = get_model_metadata_pb2.SignatureDefMap()
                for key, value in meta_graph.signature_def.items():
                    signatures.signature_def[key].CopyFrom(value)
                response.metadata["signature_def"].Pack(signatures)
                return response

        server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(Servicer(), server)
        bound = server.add_insecure_port(f"{host}:{port}")
        server.start()
        return server, bound


def _json_strings(value, binary: bool = False):
    """A string tensor's values (nested lists of bytes) as TF Serving's JSON writes them: UTF-8 text,
    `{"b64": ...}` for an output named `*_bytes` or bytes that are not UTF-8."""
    if isinstance(value, list):
        return [_json_strings(item, binary) for item in value]
    if isinstance(value, bytes):
        try:
            if not binary:
                return value.decode("utf-8")
        except UnicodeDecodeError:
            pass
        return {"b64": base64.b64encode(value).decode("ascii")}
    return value


def _only_input(server: DevServer, name: str, version: int | None, body: dict) -> str:
    """The input name of a one-input signature (requests may leave it out, as TF Serving allows)."""
    function = server.signature(name, version, body.get("signature_name", "serving_default"))
    specs = function.structured_input_signature[1]
    if len(specs) != 1:
        raise ValueError(f"the signature takes {sorted(specs)}: name each input")
    return next(iter(specs))
