import pytest
import torch
import torch.nn.functional as F


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16])
def test_matches_torch(relu, device, dtype):
    x = torch.randn(257, 129, device=device).to(dtype)
    torch.testing.assert_close(relu.relu(x), F.relu(x))


def test_writes_into_out(relu, device):
    x = torch.randn(1000, device=device)
    out = torch.full_like(x, 7.0)
    result = relu.relu(x, out)
    assert result is out
    torch.testing.assert_close(out, F.relu(x))


def test_strided_views(relu, device):
    x = torch.arange(-20, 20, device=device, dtype=torch.float32)
    out = torch.full((80,), 42.0, device=device)
    relu.relu(x, out[::2])
    torch.testing.assert_close(out[::2], F.relu(x))
    assert torch.all(out[1::2] == 42.0), "odd elements must be untouched"


def test_empty(relu, device):
    x = torch.empty(0, device=device)
    assert relu.relu(x).numel() == 0


def test_bad_arguments_raise(relu, device):
    x = torch.randn(16, device=device)
    with pytest.raises(RuntimeError, match="shape"):
        relu.relu(x, torch.empty(8, device=device))
    with pytest.raises(RuntimeError, match="Double|Float"):
        relu.relu(x, torch.empty(16, device=device, dtype=torch.float64))


def test_ops_live_in_the_build_namespace(relu):
    namespace = relu.ops.name if hasattr(relu.ops, "name") else str(relu.ops)
    assert "_relu_" in namespace
    assert relu.__name__.startswith("_relu_")
