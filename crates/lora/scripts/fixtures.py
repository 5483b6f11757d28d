"""Makes the parity fixtures of fine-drums-lora with the reference implementation.

For each architecture (a Llama, a Qwen2 with attention biases, a GPT-2), a tiny checkpoint
with random weights written by Hugging Face transformers' save_pretrained, a byte-level BPE
tokenizer trained on generated drum text, the logits transformers gives for a fixed text,
and a PEFT LoRA adapter (random, non-zero) with the logits PEFT gives through it.

    python crates/lora/scripts/fixtures.py crates/lora/tests/fixtures

With --check DIR, it loads an adapter the crate trained and saved (DIR/adapter) onto the
base its adapter_config.json names, runs PEFT on the ids in DIR/ids.json and compares with
DIR/logits.safetensors, the crate's logits (within 1e-4): the other half of the parity
test, which `cargo test parity -- --ignored` runs where torch is installed.

Needs: torch, transformers, peft, safetensors, tokenizers (pip install torch transformers
peft). Nothing is downloaded from the Hugging Face Hub.
"""

import json
import random
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file


def drum_text(rng, bars):
    """Beat-format bars made up at random (no dataset involved)."""
    lines = []
    for _ in range(bars):
        beats = []
        for _ in range(4):
            slots = []
            for _ in range(4):
                slot = ""
                for letter in "kshocr":
                    if rng.random() < 0.2:
                        slot += rng.choice([letter, letter.upper(), letter + letter])
                slots.append(slot)
            beats.append(".".join(slots))
        lines.append(" ".join(beats))
    return "\n".join(lines) + "\n"


def tokenizer(out, rng):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=320,
        special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    corpus = [drum_text(rng, 4) + ">>>" + drum_text(rng, 2) + "<<<" for _ in range(400)]
    tok.train_from_iterator(corpus, trainer)
    tok.save(str(out / "tokenizer.json"))
    return tok


def models():
    from transformers import GPT2Config, LlamaConfig, Qwen2Config

    return {
        "llama": (
            LlamaConfig(
                hidden_size=32,
                intermediate_size=48,
                num_hidden_layers=2,
                num_attention_heads=4,
                num_key_value_heads=2,
                max_position_embeddings=512,
                rms_norm_eps=1e-5,
                rope_theta=10000.0,
                tie_word_embeddings=False,
                initializer_range=0.2,
            ),
            ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
        ),
        "qwen2": (
            Qwen2Config(
                hidden_size=32,
                intermediate_size=48,
                num_hidden_layers=2,
                num_attention_heads=4,
                num_key_value_heads=2,
                max_position_embeddings=512,
                rms_norm_eps=1e-6,
                rope_theta=1000000.0,
                tie_word_embeddings=True,
                initializer_range=0.2,
                use_sliding_window=False,
            ),
            ["q_proj", "v_proj"],
        ),
        "gpt2": (
            GPT2Config(n_embd=32, n_layer=2, n_head=4, n_positions=512, initializer_range=0.2),
            ["c_attn", "c_proj", "c_fc"],
        ),
    }


def make(root):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    rng = random.Random(7)
    for name, (config, targets) in models().items():
        out = root / name
        (out / "adapter").mkdir(parents=True, exist_ok=True)
        tok = tokenizer(out, rng)
        config.vocab_size = tok.get_vocab_size()
        config.bos_token_id = config.eos_token_id = 0
        torch.manual_seed(11)
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32).eval()
        # Biases and norms start at 0 and 1: made random here, so that loading them is tested.
        with torch.no_grad():
            for pname, p in model.named_parameters():
                if pname.endswith("bias") or "norm" in pname or "ln_" in pname:
                    p.add_(torch.randn_like(p) * 0.1)
        model.save_pretrained(out, safe_serialization=True)
        text = drum_text(rng, 3) + ">>>"
        ids = tok.encode(text).ids
        with torch.no_grad():
            logits = model(torch.tensor([ids])).logits[0]
        lora = LoraConfig(
            r=4,
            lora_alpha=8,
            lora_dropout=0.0,
            target_modules=targets,
            fan_in_fan_out=name == "gpt2",
            task_type="CAUSAL_LM",
        )
        peft_model = get_peft_model(model, lora)
        torch.manual_seed(12)
        with torch.no_grad():
            for pname, p in peft_model.named_parameters():
                if "lora_B" in pname:
                    p.copy_(torch.randn_like(p) * 0.3)
        peft_model.save_pretrained(out / "adapter")
        with torch.no_grad():
            adapted = peft_model(torch.tensor([ids])).logits[0]
        save_file(
            {"logits": logits.contiguous(), "adapted": adapted.contiguous()},
            str(out / "reference.safetensors"),
        )
        (out / "input.json").write_text(json.dumps({"text": text, "ids": ids}) + "\n")
        print(f"{name}: vocab {config.vocab_size}, {len(ids)} ids, |logits| max {logits.abs().max():.3f}")


def check(root):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    config = json.loads((root / "adapter" / "adapter_config.json").read_text())
    base_dir = config["base_model_name_or_path"]
    base = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32).eval()
    model = PeftModel.from_pretrained(base, root / "adapter").eval()
    ids = json.loads((root / "ids.json").read_text())
    with torch.no_grad():
        ours = model(torch.tensor([ids])).logits[0]
    theirs = load_file(str(root / "logits.safetensors"))["logits"]
    diff = (ours - theirs).abs().max().item()
    print(f"PEFT vs fine-drums-lora, adapter {root / 'adapter'}: max |difference| {diff:.3g}")
    sys.exit(0 if diff <= 1e-4 else 1)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--check":
        check(Path(sys.argv[2]))
    elif len(sys.argv) == 2:
        make(Path(sys.argv[1]))
    else:
        sys.exit(__doc__)
