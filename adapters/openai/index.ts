/**
 * OpenAI / Azure OpenAI: the chat-completions executor behind the core's LLM judge
 * and the Batch API executor (half price, 24 h window).
 */
export * from './batch';
export * from './judge';
