"""grace: a runnable reproduction of GRACE teacher selection for knowledge distillation.

The package follows the paper's pipeline, one module per concept:

    config      the profile schema, validated on load                          (paper §3, settings)
    tasks       the Task interface; synthetic, data and answers behind it       (paper §3)
    world       the miniature world: tokenizer, student, teacher pool            (paper §3, settings)
    generation  teacher sampling at a temperature                               (paper §2, §3)
    encoding    template, tokenisation, response-only labels                    (paper §2.1, §3)
    projection  random projections Π of per-sample gradients                    (paper §2.1)
    kernels     the fused Triton kernel for the dense Π on CUDA                 (paper §2.1, App. C.3)
    projectors  the projector registry and factory                              (paper §2.1)
    features    per-sample gradient features h = log|y|·Πg                      (paper §2.1)
    persample   a block's per-sample gradients from one batched pass (hooks)     (paper §2.1)
    lora        gradients with respect to LoRA adapters (peft)                  (paper §2.1)
    scores      the score registry: GRACE and its variants, G-Vendi, G-Var, C.1 (eqs. 1–6, App. C.1)
    distill     supervised distillation of the student                          (paper §3, App. D)
    evaluation  avg@k, greedy, best-of-k                                       (paper §3)
    analysis    every statistic: correlations, gaps, budgets, robustness        (paper §3.1–3.3, App. C–D)
    plots       every figure
    study       the end-to-end study runner with caching
    cli         the ``grace`` command

The README's module table lists every module.
"""

__version__ = "0.1.0"
