from __future__ import annotations

from flywheel.train.hardware import cpu_threads, detect_hardware, precision_args, quantization_config
from flywheel.train.scratch import EOS, build_scratch_model, train_tokenizer

TEXTS = ["where is my parcel", "refund my order please", "billing", "refund", "order_status"] * 20


def test_tokenizer_round_trips_any_text_and_masks_the_answer_with_its_end_token() -> None:
    tokenizer = train_tokenizer(TEXTS, vocab_size=300)
    weird = "naïve café — ORD-123 ✓"
    assert tokenizer.decode(tokenizer(weird)["input_ids"]) == weird  # byte-level: nothing is <unk>
    messages = [{"role": "user", "content": "refund my order"}, {"role": "assistant", "content": "refund"}]
    out = tokenizer.apply_chat_template(
        messages, tokenize=True, return_dict=True, return_assistant_tokens_mask=True
    )
    tokens = tokenizer.convert_ids_to_tokens(out["input_ids"])
    answer = [t for t, m in zip(tokens, out["assistant_masks"], strict=True) if m]
    assert answer[-1] == EOS and tokenizer.convert_tokens_to_string(answer[:-1]) == "refund"
    prompt = tokenizer.apply_chat_template(messages[:1], tokenize=False, add_generation_prompt=True)
    full = tokenizer.apply_chat_template(messages, tokenize=False)
    assert full.startswith(prompt)  # the prompt renders the same alone and in the conversation


def test_sizes_build_and_share_a_teacher_vocabulary() -> None:
    tokenizer = train_tokenizer(TEXTS, vocab_size=300)
    tiny = build_scratch_model(tokenizer, "tiny", 128, seed=0)
    small = build_scratch_model(tokenizer, "small", 128, seed=0, vocab_size=512)
    assert tiny.config.num_hidden_layers == 4 and small.config.num_hidden_layers == 6
    assert small.config.vocab_size == 512
    assert sum(p.numel() for p in tiny.parameters()) < sum(p.numel() for p in small.parameters())
    again = build_scratch_model(tokenizer, "tiny", 128, seed=0)
    assert all((a == b).all() for a, b in zip(tiny.parameters(), again.parameters(), strict=True))


def test_hardware_on_this_machine_is_cpu_fp32() -> None:
    hardware = detect_hardware({"FLYWHEEL_TORCH_THREADS": "1"})
    assert hardware.threads == 1
    if not hardware.cuda:
        assert precision_args(hardware) == {"bf16": False, "fp16": False, "use_cpu": True}
        assert quantization_config(hardware, requested=True) is None  # QLoRA degrades to LoRA
    assert cpu_threads({"FLYWHEEL_TORCH_THREADS": "3"}) == 3
    assert cpu_threads({}, load=0.0) >= 1
    assert cpu_threads({}, load=64.0) == 1  # a saturated machine gets one thread, not a spin-fight
    detect_hardware()  # back to the default thread count for the other tests


def test_threads_count_other_work_running_now_not_our_own_past() -> None:
    """Two busy processes are seen as other work; this process's own history is not."""
    import subprocess
    import sys
    import time

    from flywheel.train.hardware import others_running

    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
    try:
        time.sleep(0.3)
        assert others_running() >= 1
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait()
