"""The SELU constants of Klambauer et al. (2017), "Self-Normalizing Neural Networks".

`SCALE` (lambda_01) and `ALPHA` (alpha_01) are the parameters for which a layer with
normalized weights (sum 0, sum of squares 1) maps activations of mean 0 and variance 1 to
mean 0 and variance 1. `selu_zoo.theory.selu_parameters()` recomputes them to 1e-12.
"""

SCALE = 1.0507009873554804934193349852946
ALPHA = 1.6732632423543772848170429916717

# The saturation value of SELU is -SCALE * ALPHA; alpha dropout sets dropped units to it.
SCALE_ALPHA = SCALE * ALPHA
