"""Build Bloom checkpoints locally (no hub): a byte-level BPE tokenizer trained on a small
corpus and a ``BloomForCausalLM`` with random weights, saved with ``save_pretrained``.

Tests load a tiny one through the same path as bloom-560m; the benchmark builds one of
Bloom-560M's shape to measure speed (random weights decode at the same cost)."""

from __future__ import annotations

from pathlib import Path

CORPUS = [
    "Remind me to call mum tomorrow at five.",
    "Okay, I will remind you to call your mother tomorrow at 5 pm.",
    "Ali owes you twenty dollars. Your running total with Ali is 35 dollars.",
    "I saved your note: the wifi password is on the fridge.",
    "You have three reminders today: dentist at 10, gym at 6 and call mum at 5.",
    "Hello! How can I help you today? Sure, here is what I found.",
    "The meeting with Sarah is on Friday at noon in room 12.",
    "Translate to French: good morning. Bonjour. Question: what is the capital of France? Answer: Paris.",
    "0 1 2 3 4 5 6 7 8 9 10 twenty thirty forty fifty hundred thousand dollars euros pounds",
]

BLOOM_560M = {"hidden_size": 1024, "n_layer": 24, "n_head": 16, "vocab_size": 250880}


def build_tokenizer(vocab_size: int = 600):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    try:  # transformers 4.x
        from transformers import BloomTokenizerFast as TokenizerClass
    except ImportError:  # transformers 5 folds Bloom's into the generic fast tokenizer
        from transformers import PreTrainedTokenizerFast as TokenizerClass

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<unk>", "<s>", "</s>", "<pad>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(CORPUS * 20, trainer)
    return TokenizerClass(
        tokenizer_object=tok,
        unk_token="<unk>",
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
    )


def build_bloom_checkpoint(
    path: str | Path,
    *,
    hidden_size: int = 64,
    n_layer: int = 2,
    n_head: int = 4,
    vocab_size: int | None = None,
    seed: int = 0,
) -> Path:
    import torch
    from transformers import BloomConfig, BloomForCausalLM

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer()
    config = BloomConfig(
        vocab_size=vocab_size or len(tokenizer),
        hidden_size=hidden_size,
        n_layer=n_layer,
        n_head=n_head,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    model = BloomForCausalLM(config)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path
