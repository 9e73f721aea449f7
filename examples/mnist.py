"""The design document's MNIST stages (REPL-demo.md), with TensorFlow replaced by
a tiny numpy model and the dataset generated locally and fetched through a
``file:`` URL. Everything else is the document's code.

``convnn_mnist`` carries the document's bug: ``mnist_eval`` calls
``b.model.load(...)``, which does not exist. ``mnist_eval_correct`` is the fix.
"""
from os import environ, makedirs
from os.path import expanduser, isfile, join
from hashlib import sha256 as _sha256
from numpy import load as np_load

try:
  from tinynn import Sequential, to_categorical, make_dataset
except ImportError:  # imported from the installed package, as pylightnix.demo.mnist
  from pylightnix.demo.tinynn import Sequential, to_categorical, make_dataset

from pylightnix import ( Matcher, Build, Path, RefPath, Config, Manager, RRef,
    DRef, Context, build_path, build_outpath, build_cattrs, mkdrv, rref2path,
    mkconfig, mkbuild, match_best, build_wrapper_, tryread, fetchurl,
    store_initialize, realize, instantiate )

from typing import Any


def _dataset() -> str:
    """Generate the demo dataset once, beside the store, and return its path."""
    root = environ.get("PYLIGHTNIX_ROOT") or join(expanduser("~"), "_pylightnix")
    d = join(root, "demo-data")
    makedirs(d, exist_ok=True)
    path = join(d, "mnist.npz")
    if not isfile(path):
        make_dataset(path)
    return path


MNIST_PATH = _dataset()
with open(MNIST_PATH, "rb") as _f:
    MNIST_SHA256 = _sha256(_f.read()).hexdigest()


def fetchmnist(m:Manager)->DRef:
  return \
    fetchurl(m, name='mnist',
                mode='as-is',
                url='file://' + MNIST_PATH,
                sha256=MNIST_SHA256)

class Model(Build):
  model:Sequential
  x_train:Any
  y_train:Any
  x_test:Any
  y_test:Any

def mnist_config(mnist:DRef)->Config:
  name = 'convnn_mnist'
  dataset:RefPath = [mnist, 'mnist.npz']
  learning_rate = 1e-3
  num_epoches = 1
  version = 7
  return mkconfig(locals())

def mnist_train(b:Model)->None:
  o = build_outpath(b)
  c = build_cattrs(b)

  with np_load(build_path(b, c.dataset), allow_pickle=True) as f:
    b.x_train, b.y_train = f['x_train'], f['y_train']
    b.x_test, b.y_test = f['x_test'], f['y_test']

  b.x_train = b.x_train.reshape(b.x_train.shape[0], 28, 28, 1).astype('float32') / 255
  b.y_train = to_categorical(b.y_train, 10)

  b.x_test = b.x_test.reshape(b.x_test.shape[0], 28, 28, 1).astype('float32') / 255
  b.y_test = to_categorical(b.y_test, 10)

  print('x_train shape:', b.x_train.shape)
  print(b.x_train.shape[0], 'train samples')
  print(b.x_test.shape[0], 'test samples')

  model = Sequential(28*28, 10)
  b.model = model
  model.fit(b.x_train, b.y_train,
      batch_size=32,
      epochs=c.num_epoches,
      validation_split=0.2,
      checkpoint=join(o, "checkpoint.ckpt"))

def mnist_eval(b:Model):
  o = build_outpath(b)
  b.model.load(join(o, "checkpoint.ckpt"))
  accuracy = b.model.evaluate(b.x_test, b.y_test, verbose = 0)[-1]
  print(accuracy)
  with open(join(o,'accuracy.txt'),'w') as f:
    f.write(str(accuracy))

def mnist_eval_correct(b:Model):
  o = build_outpath(b)
  b.model.load_weights(join(o, "checkpoint.ckpt"))
  accuracy = b.model.evaluate(b.x_test, b.y_test, verbose = 0)[-1]
  print(accuracy)
  with open(join(o,'accuracy.txt'),'w') as f:
    f.write(str(accuracy))

def mnist_realize(b:Model):
  mnist_train(b)
  mnist_eval(b)

def convnn_mnist(m:Manager)->DRef:
  mnist = fetchmnist(m)
  return mkdrv(m, mnist_config(mnist), match_best('accuracy.txt'),
    build_wrapper_(mnist_realize, Model))
