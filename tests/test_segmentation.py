"""course_utils.segmentation: encoder strides, bilinear kernels against F.interpolate, FCN skips, U-Net wiring."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import nn
from torchvision import tv_tensors

from course_utils import segmentation as S


def test_small_encoder_strides_and_channels():
    enc = S.SmallEncoder(width=4)
    feats = enc(torch.zeros(2, 3, 64, 64))
    assert [tuple(f.shape[1:]) for f in feats] == [(4, 32, 32), (8, 16, 16), (16, 8, 8), (16, 4, 4), (16, 2, 2)]
    assert enc.channels == tuple(f.shape[1] for f in feats)


@pytest.mark.parametrize("name,channels", [("resnet18", (64, 128, 256, 512)), ("resnet50", (256, 512, 1024, 2048))])
def test_resnet_encoder_is_the_resnet_body(name, channels):
    resnet = torchvision.models.get_model(name).eval()
    enc = S.ResNetEncoder(resnet).eval()
    x = torch.randn(1, 3, 64, 64)
    feats = enc(x)
    assert enc.channels == channels
    assert [f.shape[-1] for f in feats] == [16, 8, 4, 2]  # strides 4, 8, 16, 32
    body = nn.Sequential(*list(resnet.children())[:-2])
    with torch.no_grad():
        torch.testing.assert_close(feats[-1], body(x))


def test_bilinear_kernel_matches_interpolate_inside():
    t = torch.randn(2, 3, 5, 6)
    up = nn.ConvTranspose2d(3, 3, 4, stride=2, padding=1, bias=False)
    with torch.no_grad():
        up.weight.copy_(S.bilinear_kernel(3, 4))
        ours = up(t)
    ref = F.interpolate(t, scale_factor=2, mode="bilinear", align_corners=False)
    torch.testing.assert_close(ours[..., 1:-1, 1:-1], ref[..., 1:-1, 1:-1])  # borders: zeros vs repeated edge
    assert not torch.allclose(ours[..., 0, :], ref[..., 0, :])


def test_fcn_variants_shapes_and_wiring():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 64, 64)
    for skips in (0, 1, 2):
        assert S.FCN(S.SmallEncoder(4), 5, skips)(x).shape == (2, 5, 64, 64)
    fcn8 = S.FCN(S.SmallEncoder(4), 5, skips=2).eval()
    f8, f16, f32 = fcn8.encoder(x)[-3:]
    s = fcn8.up[0](fcn8.score[0](f32)) + fcn8.score[1](f16)
    s = fcn8.up[1](s) + fcn8.score[2](f8)
    torch.testing.assert_close(fcn8(x), F.interpolate(s, size=(64, 64), mode="bilinear", align_corners=False))
    fcn32 = S.FCN(S.SmallEncoder(4), 5, skips=0).eval()
    coarse = fcn32.score[0](fcn32.encoder(x)[-1])  # (2, 5, 2, 2): the whole mask comes from 4 positions
    torch.testing.assert_close(fcn32(x), F.interpolate(coarse, size=(64, 64), mode="bilinear", align_corners=False))
    with pytest.raises(ValueError, match="FCN-8s"):
        S.FCN(S.SmallEncoder(4), 5, skips=3)


def test_fcn_on_a_resnet_encoder():
    fcn = S.FCN(S.ResNetEncoder(torchvision.models.resnet18()), 21, skips=2)
    assert fcn(torch.zeros(1, 3, 96, 128)).shape == (1, 21, 96, 128)


def test_unet_concatenates_and_halves():
    unet = S.UNet(num_classes=3, width=4, depth=3)
    assert unet(torch.randn(2, 3, 32, 32)).shape == (2, 3, 32, 32)
    for up, dec in zip(unet.up, unet.dec):
        assert up.kernel_size == (2, 2) and up.stride == (2, 2)
        assert up.out_channels == up.in_channels // 2  # the up-convolution halves the channels ...
        assert dec[0].in_channels == 2 * up.out_channels  # ... and the skip's features are concatenated
    assert [u.in_channels for u in unet.up] == [32, 16, 8]


def test_unet_uses_the_finest_skip():
    """Change the encoder's first-level features where max pooling cannot see it (every value below its 2x2
    window's maximum goes down): the main path is exactly the same, so only the skip can change the output."""
    torch.manual_seed(0)
    unet = S.UNet(num_classes=2, width=4, depth=2).eval()
    x = torch.randn(1, 3, 16, 16)
    base = unet(x)
    pooled_same = []

    def lower_non_max(module, inputs, out):
        window_max = F.interpolate(F.max_pool2d(out, 2), scale_factor=2, mode="nearest")
        changed = torch.where(out < window_max, out - 1.0, out)
        pooled_same.append(torch.equal(F.max_pool2d(changed, 2), F.max_pool2d(out, 2)) and not torch.equal(changed, out))
        return changed

    handle = unet.down[0].register_forward_hook(lower_non_max)
    try:
        with torch.no_grad():
            assert not torch.allclose(unet(x), base)
    finally:
        handle.remove()
    assert pooled_same == [True]  # the main path saw the same values; the skip saw different ones


def test_mask_tensors_keeps_class_indices():
    class One(torch.utils.data.Dataset):
        def __len__(self):
            return 1

        def __getitem__(self, i):
            mask = torch.zeros(8, 12, dtype=torch.int64)
            mask[:, 6:] = 1
            mask[0] = 255
            return tv_tensors.Image(torch.zeros(3, 8, 12, dtype=torch.uint8)), tv_tensors.Mask(mask)

    images, masks = S.mask_tensors(One(), 4)
    assert images.shape == (1, 3, 4, 4) and masks.shape == (1, 4, 4) and masks.dtype == torch.int64
    assert set(masks.unique().tolist()) <= {0, 1, 255}  # nearest: no blended labels
    assert masks[0, 1:, :2].eq(0).all() and masks[0, 1:, 2:].eq(1).all()


def test_fuse_skips_is_fcn_before_its_last_upsampling():
    torch.manual_seed(0)
    fcn8 = S.FCN(S.SmallEncoder(4), 3, skips=2).eval()
    with torch.no_grad():
        for up in fcn8.up:
            up.weight.normal_()                               # not bilinear: the learned upsampling matters
        x = torch.randn(2, 3, 64, 64)
        f8, f16, f32 = fcn8.encoder(x)[-3:]
        by_steps = fcn8.up[1](fcn8.up[0](fcn8.score[0](f32)) + fcn8.score[1](f16)) + fcn8.score[2](f8)
        fused = S.fuse_skips((f8, f16, f32), fcn8.score, fcn8.up)
        assert fused.shape == (2, 3, 8, 8)
        torch.testing.assert_close(fused, by_steps)
        torch.testing.assert_close(fcn8(x), F.interpolate(fused, size=(64, 64), mode="bilinear", align_corners=False))
        fcn32 = S.FCN(S.SmallEncoder(4), 3, skips=0).eval()
        feats = fcn32.encoder(x)[-3:]
        torch.testing.assert_close(S.fuse_skips(feats, fcn32.score, fcn32.up), fcn32.score[0](feats[-1]))
