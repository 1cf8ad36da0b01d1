"""What a served model does with bad input: a defined answer, or an error that says what is wrong."""

import numpy as np
import pytest
import tensorflow as tf

from ecomrec_tf.serving.client import RestClient, ServingError
from ecomrec_tf.serving.dev_server import DevServer
from tests.conftest import LABELS


@pytest.fixture(scope="module")
def serve(tiny_intent_export):
    _, path = tiny_intent_export
    return path, tf.saved_model.load(str(path)).signatures["serving_default"]


def _defined(outputs, n):
    assert outputs["label"].shape == (n,) and all(
        label.decode() in LABELS for label in outputs["label"].numpy()
    )
    np.testing.assert_allclose(outputs["probabilities"].numpy().sum(-1), 1.0, atol=1e-5)


def test_empty_and_whitespace_strings_get_a_defined_answer(serve):
    _defined(serve[1](text=tf.constant(["", "   ", "\n\t"])), 3)


def test_very_long_strings_are_truncated_not_rejected(serve):
    _defined(serve[1](text=tf.constant(["where is my order " * 20000, "x" * 1_000_000])), 2)


def test_invalid_utf8_is_replaced_not_fatal(serve):
    outputs = serve[1](text=tf.constant([b"\xff\xfe broken \xc3", b"caf\xc3\xa9"]))
    _defined(outputs, 2)


def test_a_wrong_dtype_is_a_clear_error(serve):
    with pytest.raises((TypeError, ValueError, tf.errors.InvalidArgumentError), match="string|dtype"):
        serve[1](text=tf.constant([1, 2]))
    with pytest.raises((TypeError, ValueError), match="text"):
        serve[1](query=tf.constant(["hi"]))


def test_a_text_batch_of_the_wrong_rank_is_refused_as_tf_serving_runs_it(serve):
    """TF Serving feeds the request's tensor without checking its shape; a [1, 2] text input must not
    be flattened into two answers for one request row."""
    import tensorflow_text  # noqa: F401  (the TF Text ops, as TF Serving links them)

    with tf.Graph().as_default(), tf.compat.v1.Session() as session:  # Grappler on, as in TF Serving
        fed = tf.compat.v1.placeholder(tf.string, shape=None)  # C++ feeds skip Python's shape check
        meta = tf.compat.v1.saved_model.loader.load(
            session, ["serve"], str(serve[0]), input_map={"serving_default_text:0": fed}
        )
        label = meta.signature_def["serving_default"].outputs["label"].name
        assert session.run(label, {fed: np.array(["a", "b"], dtype=object)}).shape == (2,)
        with pytest.raises(tf.errors.InvalidArgumentError, match=r"input text must have shape \[batch\]"):
            session.run(label, {fed: np.array([["a", "b"]], dtype=object)})


def test_over_rest_the_client_raises_the_servers_own_error_message(serve):
    """The client adds the URL and status to the server's message and changes nothing else: what a user
    sees is what TF Serving (here the dev server, which runs the SavedModel with TensorFlow) wrote."""
    import json
    import urllib.error
    import urllib.request

    server_ = DevServer(serve[0])
    server = server_.rest()
    url = f"http://127.0.0.1:{server.server_port}"
    try:
        client = RestClient(url, "intent", retries=0)
        assert list(client.predict({"text": ["", "ok"]})["label"])  # empty strings are fine
        # TensorFlow's own error converting numbers to the string input; the dev server's for a missing input.
        for inputs, cause in (
            ({"text": [1, 2]}, "Unsupported object type int"),
            ({"query": ["hi"]}, "missing inputs"),
        ):
            request = urllib.request.Request(
                f"{url}/v1/models/intent:predict", json.dumps({"inputs": inputs}).encode(), method="POST"
            )
            with pytest.raises(urllib.error.HTTPError) as raw:
                urllib.request.urlopen(request)
            written = json.loads(raw.value.read())["error"]
            assert cause in written
            with pytest.raises(ServingError) as raised:
                client.predict(inputs)
            assert str(raised.value) == f"{url}/v1/models/intent:predict: HTTP 400: {written}"
    finally:
        server.shutdown()
