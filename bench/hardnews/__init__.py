"""A seeded generator of a hard made-up news set: syndicated copies, follow-ups that change facts, distractors."""
