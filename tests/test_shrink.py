"""Shrinking a trained CRNN into a narrower variant, and distillation."""

import pytest
import torch

from scenetext import checkpoint
from scenetext.recognition.model import CRNN, CRNNConfig
from scenetext.train.shrink import distill_loss, shrink_into


def _trained_looking(variant="small", seed=0) -> CRNN:
    """A CRNN with random (not default) BatchNorm statistics and scales, in eval mode."""
    torch.manual_seed(seed)
    model = CRNN(CRNNConfig(variant=variant))
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.weight.data.uniform_(-2, 2)
            m.bias.data.uniform_(-0.5, 0.5)
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
    return model.eval()


def _batch():
    torch.manual_seed(1)
    return torch.randn(3, 1, 32, 96), torch.tensor([96, 64, 40])


def test_shrinking_into_the_same_variant_gives_the_same_model():
    src = _trained_looking()
    dst = shrink_into(CRNN(CRNNConfig()).eval(), src)
    x, w = _batch()
    with torch.no_grad():
        torch.testing.assert_close(dst(x, w), src(x, w))


@pytest.mark.parametrize("variant", ["fast", "medium"])
def test_shrinking_keeps_the_channels_with_the_largest_batchnorm_scales_in_order(variant):
    src = _trained_looking()
    dst = shrink_into(CRNN(CRNNConfig(variant=variant)).eval(), src)
    for d, s in zip(list(dst.blocks) + [dst.last], list(src.blocks) + [src.last]):
        k = d.conv.out_channels
        kept = s.bn.weight.abs().topk(k).indices.sort().values
        torch.testing.assert_close(d.bn.weight, s.bn.weight[kept])
        torch.testing.assert_close(d.bn.running_var, s.bn.running_var[kept])
    # The first block's kept filters are the source's filters, unchanged.
    kept = src.blocks[0].bn.weight.abs().topk(dst.blocks[0].conv.out_channels).indices.sort().values
    torch.testing.assert_close(dst.blocks[0].conv.weight, src.blocks[0].conv.weight[kept])
    x, w = _batch()
    with torch.no_grad():
        out = dst(x, w)
    assert out.shape == src(x, w).shape and torch.isfinite(out).all()


def test_medium_keeps_the_small_models_second_lstm_and_classifier_whole():
    src = _trained_looking()
    dst = shrink_into(CRNN(CRNNConfig(variant="medium")).eval(), src)
    assert dst.blocks[-1].conv.out_channels < src.blocks[-1].conv.out_channels
    assert dst.rnn1.input_size < src.rnn1.input_size and dst.rnn1.hidden_size == src.rnn1.hidden_size
    for name, p in src.rnn2.named_parameters():
        torch.testing.assert_close(getattr(dst.rnn2, name), p)
    torch.testing.assert_close(dst.fc.weight, src.fc.weight)


def test_a_wider_target_or_another_layout_is_refused():
    small = _trained_looking()
    with pytest.raises(ValueError, match="wider"):
        shrink_into(CRNN(CRNNConfig(variant="small")), _trained_looking("fast"))
    with pytest.raises(ValueError, match="layout|strides"):
        shrink_into(CRNN(CRNNConfig(variant="large")), small)


def test_distill_loss_is_zero_for_the_teacher_and_ignores_padded_frames():
    torch.manual_seed(0)
    teacher = torch.randn(6, 2, 5).log_softmax(-1)
    frames = torch.tensor([6, 3])
    assert distill_loss(teacher, teacher, frames).item() == pytest.approx(0.0, abs=1e-6)
    student = torch.randn(6, 2, 5).log_softmax(-1)
    loss = distill_loss(student, teacher, frames)
    assert loss.item() > 0
    changed = student.clone()
    changed[3:, 1] = torch.randn(3, 5).log_softmax(-1)  # beyond the second crop's 3 frames
    assert distill_loss(changed, teacher, frames).item() == pytest.approx(loss.item())


def test_training_a_fast_model_from_a_small_one_with_distillation(tmp_path):
    from scenetext.train.recognizer import RecTrainConfig, train

    small = _trained_looking()
    teacher = tmp_path / "small.pt"
    checkpoint.save(teacher, {"kind": "crnn", "config": small.config.to_dict(), "state_dict": small.state_dict()})
    cfg = RecTrainConfig(out=str(tmp_path / "fast"), steps=4, batch_size=4, bucket=2, variant="fast", init=str(teacher),
                         teacher=str(teacher), holdout=0.0, workers=0, threads=1, warmup=2, val_every=100)
    last = train(cfg)
    ck = checkpoint.load(last, kind="crnn")
    assert ck["config"]["variant"] == "fast" and ck["train"]["step"] == 4
    model = CRNN(CRNNConfig.from_dict(ck["config"]))
    model.load_state_dict(ck["state_dict"])
    assert all(torch.isfinite(p).all() for p in model.parameters())
