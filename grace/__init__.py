"""grace: a runnable reproduction of GRACE teacher selection for knowledge distillation.

The package follows the paper's pipeline, one module per concept:

    tasks       synthetic GSM-style task, GSM8K/MATH loaders, answer checking   (paper §3)
    world       the miniature world: tokenizer, student, teacher pool            (paper §3, settings)
    generation  teacher sampling at a temperature                               (paper §2, §3)
    projection  random projections Π of per-sample gradients                    (paper §2.1)
    features    per-sample gradient features h = log|y|·Πg                      (paper §2.1)
    scores      GRACE, G-Vendi, G-Var and the appendix C.1 baselines            (eqs. 1–6, App. C.1)
    distill     supervised distillation of the student                          (paper §3, App. D)
    evaluation  avg@k, greedy, best-of-k                                       (paper §3)
    analysis    correlations, gaps, budgets, robustness                         (paper §3.1–3.3, App. C.2, D.5)
    plots       the paper's figures
    study       the end-to-end study runner with caching
    cli         the ``grace`` command
"""

__version__ = "0.1.0"
