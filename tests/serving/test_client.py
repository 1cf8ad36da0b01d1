import numpy as np
import pytest
import tensorflow as tf

from ecomrec_tf.serving.client import GrpcClient, RestClient, ServingError
from ecomrec_tf.serving.dev_server import DevServer
from tests.conftest import LABELS, TEXTS


@pytest.fixture(scope="module")
def served(tiny_intent_export):
    """A tiny intent export behind the dev server's REST and gRPC servers, and what the SavedModel says."""
    _, path = tiny_intent_export
    server_ = DevServer(path)
    rest = server_.rest()
    grpc_server, port = server_.grpc()
    expected = tf.saved_model.load(str(path)).signatures["serving_default"](text=tf.constant(TEXTS))
    yield server_, f"http://127.0.0.1:{rest.server_port}", f"127.0.0.1:{port}", expected
    rest.shutdown()
    grpc_server.stop(None)


@pytest.mark.parametrize("form", ["inputs", "instances"])
def test_rest_client_batches_and_joins(served, form):
    server_, url, _, expected = served
    before = server_.requests
    out = RestClient(url, "intent", form=form, batch_size=4).predict({"text": TEXTS})
    assert server_.requests - before == 2  # 6 texts in batches of 4
    assert list(out["label"]) == [label.decode() for label in expected["label"].numpy()]
    np.testing.assert_allclose(out["probabilities"], expected["probabilities"], atol=1e-5)


def test_grpc_client_batches_and_joins(served):
    server_, _, target, expected = served
    client = GrpcClient(target, "intent", batch_size=5)
    out = client.predict({"text": TEXTS})
    client.close()
    np.testing.assert_array_equal(out["label"], expected["label"].numpy())
    np.testing.assert_allclose(out["probabilities"], expected["probabilities"], atol=1e-5)


def test_transient_failures_are_retried_and_bad_requests_are_not(served):
    server_, url, target, _ = served
    server_.failures_left = 2
    assert len(RestClient(url, "intent", retries=2, backoff=0.01).predict({"text": ["hi"]})["label"]) == 1
    server_.failures_left = 2
    assert len(GrpcClient(target, "intent", retries=2, backoff=0.01).predict({"text": ["hi"]})["label"]) == 1
    server_.failures_left = 3
    with pytest.raises(ServingError, match="503"):
        RestClient(url, "intent", retries=2, backoff=0.01).predict({"text": ["hi"]})
    server_.failures_left = 0
    with pytest.raises(ServingError, match="HTTP 404: Servable not found"):
        RestClient(url, "nope").predict({"text": ["hi"]})
    with pytest.raises(ServingError, match="gRPC INVALID_ARGUMENT: missing inputs \\['text'\\]"):
        GrpcClient(target, "intent", retries=0).predict({"query": ["hi"]})
    with pytest.raises(ServingError, match="timed out|refused"):
        RestClient("http://127.0.0.1:9", "intent", timeout=0.5, retries=1, backoff=0.01).predict(
            {"text": ["x"]}
        )


def test_inputs_of_different_lengths_are_an_error():
    with pytest.raises(ValueError, match="same batch size"):
        RestClient("http://localhost:1", "m").predict({"a": [1, 2], "b": [1]})


def test_an_empty_batch_gets_zero_rows_from_both_clients(served):
    _, url, target, _ = served
    for form in ("inputs", "instances"):
        out = RestClient(url, "intent", form=form).predict({"text": []})
        assert len(out["label"]) == 0 and len(out["probabilities"]) == 0
    client = GrpcClient(target, "intent")
    out = client.predict({"text": []})
    client.close()
    assert out["label"].shape == (0,) and out["probabilities"].shape == (0, len(LABELS))


def test_rest_client_sends_bytes_as_tf_serving_json_b64(served):
    """Bytes (not valid UTF-8 here) travel as {"b64": ...}; the answer is the SavedModel's on them."""
    server_, url, _, _ = served
    texts = [b"caf\xc3\xa9 order", b"\xff\xfe broken"]
    expected = server_.models["intent"][1].signatures["serving_default"](text=tf.constant(texts))
    for form in ("inputs", "instances"):
        out = RestClient(url, "intent", form=form).predict({"text": texts})
        np.testing.assert_allclose(out["probabilities"], expected["probabilities"], atol=1e-5)


def test_a_malformed_body_is_answered_not_dropped(served):
    import urllib.error
    import urllib.request

    _, url, _, _ = served
    request = urllib.request.Request(f"{url}/v1/models/intent:predict", data=b"{not json")
    with pytest.raises(urllib.error.HTTPError) as error:
        urllib.request.urlopen(request, timeout=10)
    assert error.value.code == 400
