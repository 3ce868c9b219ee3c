"""Local stand-in for the `kernels-community/cv-utils` Hub kernel that transformers' SAM3 video
model downloads for mask NMS and hole filling.

Without network (our model servers, CI) the download fails, transformers warns once and *skips*
NMS and hole filling, so one object comes back as several overlapping duplicates. This module
provides the two functions it calls, on the CPU (inputs may live on any device; results go back
to that device). Semantics follow the reference CPU code of the official SAM3 repo: greedy NMS on
a precomputed IoU matrix, 8-connected components with per-pixel component areas.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch


class CvUtilsKernel:
    """Duck-types the kernel object: `generic_nms` and `cc_2d` are what modeling_sam3_video calls."""

    @staticmethod
    def generic_nms(
        ious: torch.Tensor, scores: torch.Tensor, iou_threshold: float, use_iou_matrix: bool = True
    ) -> torch.Tensor:
        """Greedy NMS given the pairwise IoU matrix (N, N) and scores (N,).

        Returns int64 indices (into `scores`) of kept items, highest score first. An item is
        suppressed when its IoU with an already kept, higher-scoring item exceeds `iou_threshold`.
        """
        if not use_iou_matrix:
            raise NotImplementedError("only the IoU-matrix form is used by SAM3")
        ious_np = ious.detach().float().cpu().numpy()
        order = np.argsort(-scores.detach().float().cpu().numpy(), kind="stable")
        kept: list[int] = []
        while order.size > 0:
            i = int(order[0])
            kept.append(i)
            order = order[1:][ious_np[i, order[1:]] <= iou_threshold]
        return torch.tensor(kept, dtype=torch.int64, device=scores.device)

    @staticmethod
    def cc_2d(mask: torch.Tensor, get_counts: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """Connected components of a (B, 1, H, W) uint8 mask (non-zero = foreground).

        Returns int32 `labels` (0 = background, 1.. per component) and `counts` (area of the
        component each foreground pixel belongs to, 0 on background), both (B, 1, H, W).
        """
        if not get_counts:
            raise NotImplementedError("SAM3 always asks for counts")
        masks = (mask.detach().reshape(-1, *mask.shape[-2:]) != 0).to(torch.uint8).cpu().numpy()
        labels = np.zeros(masks.shape, dtype=np.int32)
        counts = np.zeros(masks.shape, dtype=np.int32)
        for b, m in enumerate(masks):
            if not m.any():
                continue
            # 8-connectivity, like skimage.measure.label's default used by the reference code.
            _, lab, stats, _ = cv2.connectedComponentsWithStats(m, connectivity=8, ltype=cv2.CV_32S)
            areas = stats[:, cv2.CC_STAT_AREA].astype(np.int32)
            areas[0] = 0  # label 0 is the background
            labels[b] = lab
            counts[b] = areas[lab]
        shape = mask.shape
        return (
            torch.from_numpy(labels).reshape(shape).to(mask.device),
            torch.from_numpy(counts).reshape(shape).to(mask.device),
        )


def install_cv_utils_kernel() -> None:
    """Make transformers' SAM3 video model use the local kernel and never try the Hub.

    `_load_cv_utils_kernel_once` returns early when the module global is already set, so setting
    it before the first forward pass also prevents the network fetch.
    """
    from transformers.models.sam3_video import modeling_sam3_video

    if not isinstance(modeling_sam3_video.cv_utils_kernel, CvUtilsKernel):
        modeling_sam3_video.cv_utils_kernel = CvUtilsKernel()
