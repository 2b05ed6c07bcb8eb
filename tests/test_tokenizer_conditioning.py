"""HierarchicalPoseTokenizer: dense codes are conditioned on sparse codes, and each loss term is its weight times its loss."""

import pytest
import torch

from skeletok.tokenizer import HierarchicalPoseTokenizer

PARTS_F, PARTS_D = [i % 4 for i in range(12)], [i % 4 for i in range(8)]


def _tok(**kw) -> HierarchicalPoseTokenizer:
    torch.manual_seed(0)
    args = dict(num_fine=12, num_dense=8, num_parts=4, dense_per_part=2, fine_parts=PARTS_F, dense_parts=PARTS_D,
                dim=16, depth=1, code_dim=8, codebook_size_sparse=8, codebook_size_dense=8, num_actions=3,
                mask_rate=0.0)
    return HierarchicalPoseTokenizer(**{**args, **kw})


def _data(b: int = 32):
    g = torch.Generator().manual_seed(1)
    return torch.randn(b, 12, 2, generator=g), torch.randn(b, 8, 2, generator=g), torch.randint(0, 3, (b,), generator=g)


def test_sparse_code_conditions_dense_code_and_decoding():
    tok = _tok()
    x_f, x_d, action = _data()
    tok.train()
    tok(x_f, x_d, action=action)  # k-means initialisation of both codebooks
    tok.eval()
    q_s, q_d = tok.encode(x_f)
    with torch.no_grad():
        z_d = tok.encoder_fine(x_f, None)
        changed = 0
        for shift in range(1, 8):
            other = (q_s + shift) % 8
            lifted = tok.decoder_sparse(tok.codebook.lookup(0, other))
            z = tok.pre_quant_dense(torch.cat([z_d, lifted], dim=-1))
            dist = torch.cdist(z, tok.codebook.codes(1).expand(len(z), -1, -1))
            q_d_other = dist.argmin(-1).reshape(q_d.shape)
            changed += int((q_d_other != q_d).any())
            # the same dense tokens decode to another fine pose under another sparse code (D_f reads D_s's output)
            fine, fine_other = tok.decode(q_s, q_d)[1], tok.decode(other, q_d)[1]
            assert (fine - fine_other).abs().max() > 1e-4
        assert changed >= 4  # another sparse code moves the dense codes for most shifts
        # and the encoder's own path agrees with this re-computation for the true sparse code
        lifted = tok.decoder_sparse(tok.codebook.lookup(0, q_s))
        z = tok.pre_quant_dense(torch.cat([z_d, lifted], dim=-1))
        same = torch.cdist(z, tok.codebook.codes(1).expand(len(z), -1, -1)).argmin(-1).reshape(q_d.shape)
        assert torch.equal(same, q_d)


@pytest.mark.parametrize("name,kwargs,terms", [
    ("lambda_local", dict(lambda_local=2.0), ("local",)),
    ("lambda_global", dict(lambda_global=0.6), ("global",)),
    ("beta", dict(beta=0.5), ("commit_sparse", "commit_dense")),
])
def test_each_term_is_weight_times_loss(name, kwargs, terms):
    x_f, x_d, action = _data()
    base = _tok()
    base.train()
    base(x_f, x_d, action=action)  # initialise the codebooks once; both models then share every weight
    doubled = _tok(**kwargs)
    doubled.load_state_dict(base.state_dict())
    base.eval(), doubled.eval()
    with torch.no_grad():
        *_, t1 = base(x_f, x_d, action=action, return_loss_breakdown=True)
        *_, t2 = doubled(x_f, x_d, action=action, return_loss_breakdown=True)
    for term in terms:
        assert t1[term] > 0
        assert t2[term].item() == pytest.approx(2.0 * t1[term].item(), rel=1e-5)
    for term in ("rec_dense", "rec_fine"):
        assert t2[term].item() == pytest.approx(t1[term].item(), rel=1e-6)
    assert t2["total"].item() == pytest.approx(sum(v.item() for k, v in t2.items() if k != "total"), rel=1e-5)
