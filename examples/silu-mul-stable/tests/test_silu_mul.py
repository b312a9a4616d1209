import pytest
import torch
import torch.nn.functional as F


def reference(x: torch.Tensor) -> torch.Tensor:
    d = x.shape[-1] // 2
    return F.silu(x[..., :d].float()) * x[..., d:].float()


@pytest.mark.parametrize("shape", [(4, 64), (3, 5, 258), (1, 2)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_matches_torch(kernel, device, shape, dtype):
    x = torch.randn(shape, device=device).to(dtype)
    result = kernel.silu_and_mul(x)
    assert result.shape == shape[:-1] + (shape[-1] // 2,)
    tol = {"atol": 1e-5, "rtol": 1e-5} if dtype == torch.float32 else {"atol": 2e-2, "rtol": 2e-2}
    torch.testing.assert_close(result.float(), reference(x).float(), **tol)


def test_errors_cross_the_stable_abi(kernel, device):
    with pytest.raises(RuntimeError, match="last dimension must be even"):
        kernel.silu_and_mul(torch.randn(4, 7, device=device))
    with pytest.raises(RuntimeError, match="float32 and bfloat16"):
        kernel.silu_and_mul(torch.randn(4, 8, device=device, dtype=torch.float64))


def test_variant_is_the_stable_abi_one(kernel):
    import kernels

    loaded = [k for k in kernels.get_loaded_kernels() if k.module is kernel]
    assert loaded, "the kernel must be known to the loader"
    assert "torch-stable-abi210-" in str(loaded[0].module.__file__)


def test_fake_registration_supports_compile(kernel, device):
    x = torch.randn(8, 32, device=device)
    compiled = torch.compile(kernel.silu_and_mul, fullgraph=True, backend="eager")
    torch.testing.assert_close(compiled(x), reference(x))
