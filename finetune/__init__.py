"""LoRA fine-tuning of the plan, tool and reflect sub-agents (``autoact finetune``).

Modules: ``records`` (training records, general-data mixing), ``masking``
(tokenisation with the prompt masked, as at inference), ``config`` (settings and
flags), ``train`` (the Trainer entry point, also for DeepSpeed launches), ``report``
(manifest and loss plot), ``serve_check`` (serving the new adapters by name).
Heavy libraries (torch, transformers, peft) load only when training starts.
"""

from autoact.finetune.config import DS_ZERO3_CONFIG, FinetuneConfig
from autoact.finetune.records import AGENTS, ONE_AGENT, RecordError

__all__ = ["AGENTS", "DS_ZERO3_CONFIG", "FinetuneConfig", "ONE_AGENT", "RecordError"]
