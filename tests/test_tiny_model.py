from transformers import AutoModelForCausalLM, AutoTokenizer

from recipes.tiny_model import FIM_MIDDLE_TOKEN, FIM_PREFIX_TOKEN, FIM_SUFFIX_TOKEN


def test_tiny_model_has_seed_coder_special_tokens_and_generates(tiny_model_dir):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    assert (tokenizer.bos_token_id, tokenizer.pad_token_id, tokenizer.eos_token_id) == (0, 1, 2)
    fim_ids = tokenizer.convert_tokens_to_ids([FIM_SUFFIX_TOKEN, FIM_PREFIX_TOKEN, FIM_MIDDLE_TOKEN])
    assert tokenizer.unk_token_id not in fim_ids and len(set(fim_ids)) == 3
    source = "def add(a, b):\n    return a + b\n"
    encoded = tokenizer(source, return_tensors="pt")
    assert tokenizer.decode(encoded.input_ids[0]) == source
    generated = model.generate(**encoded, max_new_tokens=4, do_sample=False)
    assert generated.shape[1] == encoded.input_ids.shape[1] + 4
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True
    )
    assert prompt.endswith("<|assistant|>\n")
