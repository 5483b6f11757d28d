"""PyTorch + transformers + PEFT reference for `cargo bench -p fine-drums-lora --bench train`:
LoRA training of SmolLM2-135M's shape, with the same settings and example length, so that
the two speeds and peak memories compare side by side on one machine.

    python3 benches/lora_reference.py --threads 2 --steps 10

The shape is SmolLM2-135M's (a Llama: width 576, 30 blocks, 9 heads with 3 key/value heads,
a feed-forward of 1,536, a vocabulary of 49,152, tied embeddings; 134,515,008 parameters)
with random weights (nothing is downloaded). Adapters as fine-drums-lora's defaults: r 8,
alpha 16, dropout 0.05 on every attention and feed-forward projection (2,442,240
parameters). AdamW (lr 2e-4, betas 0.9/0.999, no weight decay) on the adapters only, f32.
Each step is one micro-batch of one example of 341 tokens (the mean length of the GMD's
train split as fine-drums-lora makes it), the loss on its last 293 tokens (the completion's
share of that length); the step's forward, backward and optimiser step are timed.

Prints the time and tokens/s of each timed step, their median, and the peak RSS of the
process (`ru_maxrss`), which includes PyTorch's own libraries.

Needs: torch, transformers, peft (pip install torch transformers peft).
"""

import argparse
import resource
import statistics
import time

import torch

TOKENS, PROMPT = 341, 48


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    parser.add_argument("--steps", type=int, default=10, help="timed steps (default 10)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first (default 2)")
    parser.add_argument("--seed", type=int, default=0, help="weights, example and dropout")
    parser.add_argument(
        "--attention",
        default=None,
        help="transformers' attn_implementation (default: its own choice, sdpa)",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=49152,
        hidden_size=576,
        intermediate_size=1536,
        num_hidden_layers=30,
        num_attention_heads=9,
        num_key_value_heads=3,
        max_position_embeddings=8192,
        rope_theta=100000.0,
        rms_norm_eps=1e-5,
        tie_word_embeddings=True,
        hidden_act="silu",
    )
    if args.attention:
        config._attn_implementation = args.attention
    model = LlamaForCausalLM(config).to(torch.float32)
    total = sum(p.numel() for p in model.parameters())
    lora = LoraConfig(
        r=8,
        lora_alpha=16,
        lora_dropout=0.05,
        target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
        task_type="CAUSAL_LM",
    )
    model = get_peft_model(model, lora)
    model.train()
    trained = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(trained, lr=2e-4, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)

    ids = torch.randint(0, config.vocab_size, (1, TOKENS))
    labels = ids.clone()
    labels[0, :PROMPT] = -100
    print(
        f"torch {torch.__version__}, {args.threads} threads, attention "
        f"{model.config._attn_implementation}; {total:,} parameters, "
        f"{sum(p.numel() for p in trained):,} trained; one example of {TOKENS} tokens a step"
    )
    times = []
    for step in range(args.warmup + args.steps):
        start = time.perf_counter()
        loss = model(input_ids=ids, labels=labels).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        took = time.perf_counter() - start
        timed = step >= args.warmup
        if timed:
            times.append(took)
        print(
            f"step {step + 1}{'' if timed else ' (warm-up)'}: loss {loss.item():.5f}, "
            f"{took * 1000:.0f} ms, {TOKENS / took:.1f} tokens/s"
        )
    median = statistics.median(times)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"median step {median * 1000:.0f} ms: {TOKENS / median:.1f} training tokens/s")
    print(f"peak RSS {peak:.0f} MiB")


if __name__ == "__main__":
    main()
