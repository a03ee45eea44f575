"""The plain-Keras way to train a self-normalizing MLP on a CSV: what selu_zoo is measured against.

    python benchmarks/plain_keras_csv.py FILE.csv [EPOCHS]

pandas reads the file, scikit-learn splits off 20 % for testing, a ``Normalization`` layer
adapts to the training rows, and 4 x (``Dense(256, "selu")`` + ``AlphaDropout(0.05)``) train
with Keras' defaults (``batch_size=32``, 20 % of the training rows for validation). The label
is the column named ``label``. Prints one JSON line: ``{"test_accuracy": ...}``.
"""

import json
import sys

import keras
import pandas as pd
from sklearn.model_selection import train_test_split


def main(path, epochs=2):
    frame = pd.read_csv(path)
    x = frame.drop(columns="label").to_numpy("float32")
    y = frame["label"].to_numpy()
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.2, random_state=0)
    normalize = keras.layers.Normalization()
    normalize.adapt(x_train)
    layers = [keras.Input((x.shape[1],)), normalize]
    for _ in range(4):
        layers += [keras.layers.Dense(256, "selu", kernel_initializer="lecun_normal"),
                   keras.layers.AlphaDropout(0.05)]
    model = keras.Sequential(layers + [keras.layers.Dense(int(y.max()) + 1, "softmax")])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x_train, y_train, epochs=epochs, validation_split=0.2, verbose=0)
    _, accuracy = model.evaluate(x_test, y_test, verbose=0)
    print(json.dumps({"test_accuracy": accuracy, "train_rows": int(len(x_train) * 0.8)}))


if __name__ == "__main__":
    main(sys.argv[1], *(int(a) for a in sys.argv[2:]))
