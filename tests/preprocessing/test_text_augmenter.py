import numpy as np
import pytest
import tensorflow as tf

from ecomrec_tf.data import text_classification_dataset
from ecomrec_tf.preprocessing import TextAugmenter, load_synonyms
from ecomrec_tf.preprocessing.text_augmenter import OPS

TEXTS = [
    "i need cheap Nike sneakers size 10.5 please",
    "where is my parcel #A-12345 it is late",
    "refund for order 8841203 asap thanks",
    "show me Levi's jeans 32x34 in black",
    "cancel my order please",
    "Sony WH-1000XM5 headphones broken",
    "[agent] how can i help [customer] my parcel never came",
    "hi",
]
BRANDS = ["nike", "levi's", "sony"]
PROTECTED = [
    "Nike",
    "10.5",
    "#A-12345",
    "8841203",
    "Levi's",
    "32x34",
    "Sony",
    "WH-1000XM5",
    "[agent]",
    "[customer]",
]


def run(augmenter, seed=(1, 2), texts=TEXTS):
    return [t.decode() for t in augmenter(tf.constant(texts), seed=list(seed)).numpy()]


@pytest.mark.parametrize("op", OPS)
def test_each_op_keeps_protected_tokens_and_never_empties(op):
    augmenter = TextAugmenter({op: 1.0}, protected_words=BRANDS)
    for seed in range(5):
        out = run(augmenter, (seed, 7))
        for original, augmented in zip(TEXTS, out):
            assert augmented.strip(), (op, original)
            for token in PROTECTED:
                if token in original.split():
                    assert token in augmented.split(), (op, original, augmented)


def test_each_op_changes_what_it_says():
    cheap = "cheap sofa for sale"
    assert run(TextAugmenter({"synonym": 1.0}), texts=[cheap])[0].split()[0] in load_synonyms()["cheap"]
    assert len(run(TextAugmenter({"insertion": 1.0}), texts=[cheap])[0].split()) > 4
    assert (
        len(
            run(TextAugmenter({"deletion": 0.5}), texts=["one two three four five six seven eight"])[
                0
            ].split()
        )
        < 8
    )
    swapped = run(TextAugmenter({"swap": 0.5}), texts=["one two three four five six"])[0]
    assert (
        sorted(swapped.split()) == sorted("one two three four five six".split())
        and swapped != "one two three four five six"
    )
    typo = run(TextAugmenter({"typo": 1.0}), texts=["where parcel please"])[0].split()
    assert all(a != b for a, b in zip(typo, ["where", "parcel", "please"]))
    assert run(TextAugmenter({"space": 1.0}), texts=["where is my parcel"])[0] == "whereismyparcel"


def test_same_seed_same_output_other_seed_other_output():
    augmenter = TextAugmenter({"synonym": 0.3, "deletion": 0.1, "swap": 0.1, "typo": 0.2, "space": 0.05})
    assert run(augmenter, (3, 4)) == run(augmenter, (3, 4))
    assert run(augmenter, (3, 4)) == run(TextAugmenter(augmenter.rates), (3, 4))  # a new instance too
    assert run(augmenter, (3, 4)) != run(augmenter, (3, 5))


def test_the_lexicon_is_extendable():
    augmenter = TextAugmenter({"synonym": 1.0}, synonyms={"widget": ["gadget"]})
    assert run(augmenter, texts=["blue widget"]) == ["blue gadget"]


def test_paraphraser_hook():
    augmenter = TextAugmenter({}, paraphraser=lambda batch: [t.upper() for t in batch], paraphrase_rate=1.0)
    assert run(augmenter, texts=["where is it"]) == ["WHERE IS IT"]
    broken = TextAugmenter({}, paraphraser=lambda batch: batch[:1], paraphrase_rate=1.0)
    with pytest.raises((ValueError, tf.errors.InvalidArgumentError), match="returned 1 texts for 2"):
        run(broken, texts=["a", "b"])


def test_unknown_op_is_refused():
    with pytest.raises(ValueError, match=r"unknown augmentation ops \['typos'\]"):
        TextAugmenter({"typos": 0.1})


def test_in_the_pipeline_deterministic_by_seed_and_fresh_each_epoch():
    augmenter = TextAugmenter({"synonym": 0.5, "typo": 0.3})
    texts = TEXTS * 4

    def epochs(seed):
        dataset = text_classification_dataset(
            texts, np.arange(len(texts)), batch_size=8, seed=seed, augment=augmenter
        )
        return [[t.decode() for batch, _ in dataset for t in batch.numpy()] for _ in range(2)]

    first, second = epochs(seed=11)
    assert epochs(seed=11) == [first, second]
    assert first != second  # new augmentations every epoch
