import pytest
import torch


def reference(x, weight, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * weight


@pytest.mark.parametrize("shape", [(4, 64), (2, 3, 128)])
def test_matches_reference(kernel, device, shape):
    x = torch.randn(shape, device=device)
    weight = torch.randn(shape[-1], device=device)
    torch.testing.assert_close(kernel.rms_norm(x, weight), reference(x, weight, kernel.DEFAULT_EPS))


def test_package_data_is_shipped(kernel):
    assert kernel.DEFAULT_EPS == pytest.approx(1e-6)


def test_op_is_registered_in_the_build_namespace(kernel, device):
    x = torch.randn(3, 16, device=device)
    weight = torch.ones(16, device=device)
    op = getattr(kernel.ops, "rms_norm")
    torch.testing.assert_close(op(x, weight, 1e-6), reference(x, weight, 1e-6))
    assert kernel.__name__.startswith("_rms_norm_py_")


def test_opcheck(kernel, device):
    x = torch.randn(3, 16, device=device)
    weight = torch.randn(16, device=device)
    torch.library.opcheck(kernel.ops.rms_norm.default, (x, weight, 1e-6))
