"""`ecomrec-tf serve`: TF Serving's REST and gRPC APIs over an export, answering as TF Serving does."""

import json
import shutil
import subprocess
import sys
import time

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import get_model_metadata_pb2, predict_pb2, prediction_service_pb2_grpc

from ecomrec_tf.export import ExportError
from ecomrec_tf.serving.client import GrpcClient, RestClient
from ecomrec_tf.serving.dev_server import DevServer, find_exports
from tests.conftest import TEXTS


@pytest.fixture(scope="module")
def two_versions(tiny_intent_export, tmp_path_factory):
    """saved_models/intent/{1,2} (copies of one export) beside an empty model folder."""
    _, path = tiny_intent_export
    base = tmp_path_factory.mktemp("saved_models")
    for version in ("1", "2"):
        shutil.copytree(path, base / "intent" / version)
    (base / "empty").mkdir()
    return base


def curl(*args) -> dict:
    return json.loads(
        subprocess.run(["curl", "-s", *args], capture_output=True, text=True, check=True).stdout
    )


def test_finds_every_model_and_version_as_tf_serving_lays_them_out(two_versions, tmp_path):
    assert {k: sorted(v) for k, v in find_exports(two_versions).items()} == {"intent": [1, 2]}
    assert sorted(find_exports(two_versions / "intent")["intent"]) == [1, 2]
    assert find_exports(two_versions / "intent" / "2") == {"intent": {2: two_versions / "intent" / "2"}}
    with pytest.raises(ExportError, match="no SavedModel here"):
        find_exports(tmp_path)


def test_rest_answers_status_metadata_and_predict_as_tf_serving_does(two_versions):
    server = DevServer(two_versions)
    rest = server.rest()
    url = f"http://127.0.0.1:{rest.server_port}/v1/models/intent"
    try:
        status = curl(url)["model_version_status"]
        assert [(s["version"], s["state"]) for s in status] == [("1", "AVAILABLE"), ("2", "AVAILABLE")]
        metadata = curl(f"{url}/versions/1/metadata")
        assert metadata["model_spec"] == {"name": "intent", "signature_name": "", "version": "1"}
        inputs = metadata["metadata"]["signature_def"]["signature_def"]["serving_default"]["inputs"]
        assert inputs["text"]["dtype"] == "DT_STRING"
        expected = server.models["intent"][2].signatures["serving_default"](text=tf.constant(TEXTS))
        rows = curl(
            "-X", "POST", f"{url}:predict", "-d", json.dumps({"instances": [{"text": t} for t in TEXTS]})
        )
        assert [r["label"] for r in rows["predictions"]] == [x.decode() for x in expected["label"].numpy()]
        columns = curl("-X", "POST", f"{url}/versions/1:predict", "-d", json.dumps({"inputs": TEXTS}))
        np.testing.assert_allclose(columns["outputs"]["probabilities"], expected["probabilities"], atol=1e-6)
        assert "Specific(intent, 7)" in curl(f"{url}/versions/7")["error"]
        assert "Latest(shoes)" in curl("-X", "POST", f"{url[:-6]}shoes:predict", "-d", "{}")["error"]
        assert "JSON Parse error" in curl("-X", "POST", f"{url}:predict", "-d", "[1]")["error"]
    finally:
        rest.shutdown()


def test_grpc_answers_predict_and_metadata(two_versions):
    server = DevServer(two_versions)
    grpc_server, port = server.grpc()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
            request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
            request.model_spec.name = "intent"
            response = stub.GetModelMetadata(request)
            signatures = get_model_metadata_pb2.SignatureDefMap()
            response.metadata["signature_def"].Unpack(signatures)
            assert response.model_spec.version.value == 2 and "serving_default" in signatures.signature_def
            predict = predict_pb2.PredictRequest()
            predict.model_spec.name, predict.model_spec.version.value = "intent", 1
            predict.inputs["text"].CopyFrom(tf.make_tensor_proto(np.array(TEXTS, dtype=object)))
            labels = tf.make_ndarray(stub.Predict(predict).outputs["label"])
            assert len(labels) == len(TEXTS)
            predict.model_spec.name = "shoes"
            with pytest.raises(grpc.RpcError) as error:
                stub.Predict(predict)
            assert error.value.code() == grpc.StatusCode.NOT_FOUND
    finally:
        grpc_server.stop(None)


@pytest.mark.subprocess
def test_the_serve_command_answers_the_packages_clients(two_versions):
    process = subprocess.Popen(
        [sys.executable, "-m", "ecomrec_tf.cli", "serve", "--model", str(two_versions), "--rest-port", "0",
         "--grpc-port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        line = process.stdout.readline()  # "serving intent (versions 1, 2): REST http://..., gRPC ..."
        assert line.startswith("serving intent (versions 1, 2): REST http://127.0.0.1:"), line
        rest_url = line.split("REST ")[1].split("/v1/")[0]
        grpc_target = line.split("gRPC ")[1].strip()
        assert "development server" in process.stdout.readline()
        deadline = time.time() + 30
        while True:  # the servers are up once the line is printed; allow for a slow start all the same
            try:
                rest = RestClient(rest_url, "intent", retries=0).predict({"text": TEXTS})
                break
            except Exception:
                if time.time() > deadline:
                    raise
                time.sleep(0.5)
        client = GrpcClient(grpc_target, "intent")
        try:
            by_grpc = client.predict({"text": TEXTS})
        finally:
            client.close()
        assert list(rest["label"]) == [x.decode() if isinstance(x, bytes) else x for x in by_grpc["label"]]
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert process.stderr.read() == ""  # no TensorFlow start-up noise


def test_string_outputs_are_json_as_tf_serving_writes_them():
    """Nested string outputs (a reply's candidates, [batch, k]) as text; `*_bytes` outputs and bytes that
    are not UTF-8 as {"b64": ...}, which the clients turn back into bytes."""
    from ecomrec_tf.serving.client import _unb64
    from ecomrec_tf.serving.dev_server import _json_strings

    candidates = np.array([[b"Sorry!", "Gr\u00fc\u00dfe".encode()], [b"ok", b""]], dtype=object)
    assert json.loads(json.dumps(_json_strings(candidates.tolist()))) == [
        ["Sorry!", "Gr\u00fc\u00dfe"],
        ["ok", ""],
    ]
    for value, binary in ((b"\xff\x00", False), (b"abc", True)):
        assert _unb64(json.loads(json.dumps(_json_strings([value], binary)))) == [value]
