"""Image history pool (Shrivastava et al. 2017), as used by CycleGAN's discriminators."""

from __future__ import annotations

import torch


class ImagePool:
    """Keeps up to ``size`` generated images; half the time returns an older one instead of the new.

    Its random choices come from its own generator, whose state is checkpointed with the pool.
    """

    def __init__(self, size: int = 50, seed: int = 0) -> None:
        self.size = size
        self.images: list[torch.Tensor] = []
        self.gen = torch.Generator().manual_seed(seed)

    def query(self, batch: torch.Tensor) -> torch.Tensor:
        if self.size == 0:
            return batch
        out = []
        for img in batch.detach():
            img = img.unsqueeze(0)
            if len(self.images) < self.size:
                self.images.append(img.clone())
                out.append(img)
            elif torch.rand(1, generator=self.gen).item() < 0.5:
                k = int(torch.randint(0, self.size, (1,), generator=self.gen).item())
                out.append(self.images[k].clone())
                self.images[k] = img.clone()
            else:
                out.append(img)
        return torch.cat(out, 0)

    def state_dict(self) -> dict:
        return {"images": [i.cpu() for i in self.images], "gen": self.gen.get_state()}

    def load_state_dict(self, state: dict, device: torch.device) -> None:
        self.images = [i.to(device) for i in state["images"]]
        self.gen.set_state(state["gen"])
