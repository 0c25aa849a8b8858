"""The shared training utilities in `regularizers.callbacks`: the wall-clock budget callback
(used by qgen and generative training) and accelerator detection."""

from types import SimpleNamespace

import torch
from transformers import Trainer, TrainerControl, TrainingArguments

import regularizers
from regularizers.callbacks import TimeBudgetCallback, has_accelerator


def test_exported_from_the_package():
    assert regularizers.TimeBudgetCallback is TimeBudgetCallback
    assert regularizers.has_accelerator is has_accelerator


def test_has_accelerator_is_a_bool_and_agrees_with_torch():
    found = has_accelerator()
    assert isinstance(found, bool)
    accelerator = getattr(torch, "accelerator", None)
    expected = accelerator.is_available() if accelerator else torch.cuda.is_available()
    assert found == expected


def _step(callback, global_step=3):
    args = SimpleNamespace(world_size=1, device="cpu")
    return callback.on_step_end(args, SimpleNamespace(global_step=global_step), TrainerControl())


def test_budget_stops_only_once_spent():
    assert not _step(TimeBudgetCallback(0.0)).should_training_stop  # training not begun
    spent = TimeBudgetCallback(0.0)
    spent.on_train_begin(None, None, None)
    assert _step(spent).should_training_stop
    fresh = TimeBudgetCallback(10.0)
    fresh.on_train_begin(None, None, None)
    assert not _step(fresh).should_training_stop


class _Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.w = torch.nn.Linear(2, 1)

    def forward(self, x, y):
        return {"loss": torch.nn.functional.mse_loss(self.w(x).squeeze(-1), y)}


def test_trainer_stops_after_the_first_step_when_the_budget_is_spent(tmp_path):
    data = [{"x": torch.randn(2), "y": torch.tensor(0.0)} for _ in range(64)]
    args = TrainingArguments(
        output_dir=str(tmp_path),
        max_steps=20,
        per_device_train_batch_size=4,
        use_cpu=True,
        report_to="none",
        save_strategy="no",
        disable_tqdm=True,
    )
    trainer = Trainer(model=_Tiny(), args=args, train_dataset=data)
    trainer.add_callback(TimeBudgetCallback(0.0))
    trainer.train()
    assert trainer.state.global_step == 1
