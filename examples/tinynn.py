"""A tiny numpy classifier with a Keras-like surface (fit, evaluate, save_weights,
load_weights), so the design document's demo runs without TensorFlow. Like a
Keras model it has no ``load`` method; the demo's bug depends on that."""
from __future__ import annotations

import os
from typing import Any, List

import numpy as np


def to_categorical(y: Any, num_classes: int) -> np.ndarray:
    out = np.zeros((len(y), num_classes), dtype="float32")
    out[np.arange(len(y)), np.asarray(y, dtype=int)] = 1.0
    return out


class Sequential:
    """Softmax regression trained with minibatch SGD."""

    def __init__(self, inputs: int, classes: int, learning_rate: float = 0.5, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.w = (rng.standard_normal((inputs, classes)) * 0.01).astype("float32")
        self.b = np.zeros(classes, dtype="float32")
        self.learning_rate = learning_rate

    def _probs(self, x: np.ndarray) -> np.ndarray:
        z = x.reshape(len(x), -1) @ self.w + self.b
        z -= z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)

    def fit(self, x: np.ndarray, y: np.ndarray, batch_size: int = 32, epochs: int = 1,
            validation_split: float = 0.0, checkpoint: str = "") -> List[float]:
        """Train; with ``checkpoint``, save the weights with the best validation accuracy there."""
        n_val = int(len(x) * validation_split)
        xt, yt, xv, yv = x[n_val:], y[n_val:], x[:n_val], y[:n_val]
        best, history = -1.0, []
        for _ in range(epochs):
            for i in range(0, len(xt), batch_size):
                xb, yb = xt[i:i + batch_size].reshape(-1, self.w.shape[0]), yt[i:i + batch_size]
                g = (self._probs(xb) - yb) / len(xb)
                self.w -= self.learning_rate * xb.T @ g
                self.b -= self.learning_rate * g.sum(axis=0)
            acc = self.evaluate(xv, yv)[-1] if n_val else self.evaluate(xt, yt)[-1]
            history.append(acc)
            if checkpoint and acc > best:
                best = acc
                self.save_weights(checkpoint)
        return history

    def evaluate(self, x: np.ndarray, y: np.ndarray, verbose: int = 0) -> List[float]:
        p = self._probs(x)
        loss = float(-np.mean(np.log(p[np.arange(len(y)), y.argmax(axis=1)] + 1e-9)))
        return [loss, float(np.mean(p.argmax(axis=1) == y.argmax(axis=1)))]

    def save_weights(self, path: str) -> None:
        with open(path, "wb") as f:
            np.savez(f, w=self.w, b=self.b)

    def load_weights(self, path: str) -> None:
        with np.load(path) as f:
            self.w, self.b = f["w"], f["b"]


def make_dataset(path: str, seed: int = 7) -> None:
    """Write an MNIST-shaped .npz (28x28 uint8 images, 10 classes) made of noisy class prototypes."""
    rng = np.random.default_rng(seed)
    protos = rng.random((10, 28, 28)) > 0.7

    def sample(n: int):  # type: ignore[no-untyped-def]
        y = rng.integers(0, 10, n)
        x = protos[y] * 120 + rng.normal(0, 110, (n, 28, 28))
        return np.clip(x, 0, 255).astype("uint8"), y.astype("uint8")
    x_train, y_train = sample(3000)
    x_test, y_test = sample(500)
    tmp = path + ".part"
    with open(tmp, "wb") as f:
        np.savez(f, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    os.replace(tmp, path)
