"""A STAND-IN for TF Serving, for testing the clients only: no TF Serving binary installs here.

It serves one SavedModel with TF Serving's REST paths (`POST /v1/models/<name>[/versions/<v>]:predict`,
`instances` and `inputs` forms, `{"error": ...}` on bad requests) and its gRPC `PredictionService.Predict`.
It is not TF Serving: no batching, version policy or model config; `fail_first` makes the first N requests
answer 503 / UNAVAILABLE, to exercise retries.
"""

from __future__ import annotations

import json
import re
import threading
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
import numpy as np
import tensorflow as tf
import tensorflow_text  # noqa: F401  (the SavedModel's tokenizer ops)
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from ecomrec_tf.serving.client import _unb64  # TF Serving's {"b64": ...} JSON for bytes

PATH = re.compile(r"^/v1/models/(?P<name>[^/:]+)(/versions/(?P<version>\d+))?:predict$")


def _tensor(values, spec: tf.TensorSpec) -> tf.Tensor:
    return tf.constant(np.asarray(values, dtype=object) if spec.dtype == tf.string else values, spec.dtype)


class StandIn:
    def __init__(self, version_dir, name: str, version: int = 1, fail_first: int = 0):
        self.model = tf.saved_model.load(str(version_dir))
        self.name, self.version, self.failures_left = name, version, fail_first
        self.lock = threading.Lock()
        self.requests = 0

    def _should_fail(self) -> bool:
        with self.lock:
            self.requests += 1
            if self.failures_left > 0:
                self.failures_left -= 1
                return True
            return False

    def run(self, signature: str, inputs: dict) -> dict[str, np.ndarray]:
        if signature not in self.model.signatures:
            raise KeyError(f'Serving signature name: "{signature}" not found in signature def')
        function = self.model.signatures[signature]
        specs = function.structured_input_signature[1]
        missing = set(specs) - set(inputs)
        if missing:
            raise ValueError(f"missing inputs {sorted(missing)}")
        outputs = function(**{key: _tensor(inputs[key], specs[key]) for key in specs})
        return {key: value.numpy() for key, value in outputs.items()}

    # --- REST ------------------------------------------------------------------------------------
    def rest(self, host: str = "127.0.0.1") -> ThreadingHTTPServer:
        standin = self

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

            def do_POST(self):  # noqa: N802
                match = PATH.match(self.path)
                try:  # as TF Serving: a body that is not a JSON object is a 400 naming the problem
                    body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                    if not isinstance(body, dict):
                        raise ValueError(f"expected a JSON object, got {type(body).__name__}")
                except ValueError as error:
                    return self._answer(400, {"error": f"JSON Parse error: {error}"})
                if not match or match["name"] != standin.name:
                    return self._answer(404, {"error": f"Servable not found for request: {self.path}"})
                if standin._should_fail():
                    return self._answer(503, {"error": "stand-in: unavailable"})
                try:
                    if "instances" in body:
                        rows = _unb64(body["instances"])
                        inputs = {key: [row[key] for row in rows] for key in rows[0]}
                    else:
                        inputs = _unb64(body["inputs"])
                    outputs = standin.run(body.get("signature_name", "serving_default"), inputs)
                except (KeyError, ValueError, TypeError, tf.errors.OpError) as error:
                    return self._answer(400, {"error": str(error)})
                jsonable = {k: [x.decode() if isinstance(x, bytes) else x for x in v.tolist()]
                            if v.dtype == object else v.tolist() for k, v in outputs.items()}  # fmt: skip
                if "instances" in body:
                    size = len(next(iter(jsonable.values())))
                    return self._answer(
                        200, {"predictions": [{k: v[i] for k, v in jsonable.items()} for i in range(size)]}
                    )
                return self._answer(200, {"outputs": jsonable})

        server = ThreadingHTTPServer((host, 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return server

    # --- gRPC ------------------------------------------------------------------------------------
    def grpc(self) -> tuple[grpc.Server, int]:
        standin = self

        class Servicer(prediction_service_pb2_grpc.PredictionServiceServicer):
            def Predict(self, request, context):  # noqa: N802
                if request.model_spec.name != standin.name:
                    context.abort(grpc.StatusCode.NOT_FOUND, f"Servable not found: {request.model_spec.name}")
                if standin._should_fail():
                    context.abort(grpc.StatusCode.UNAVAILABLE, "stand-in: unavailable")
                inputs = {key: tf.make_ndarray(value) for key, value in request.inputs.items()}
                try:
                    outputs = standin.run(request.model_spec.signature_name or "serving_default", inputs)
                except (KeyError, ValueError, TypeError, tf.errors.OpError) as error:
                    context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(error))
                response = predict_pb2.PredictResponse()
                for key, value in outputs.items():
                    response.outputs[key].CopyFrom(tf.make_tensor_proto(value))
                return response

        server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(Servicer(), server)
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        return server, port
