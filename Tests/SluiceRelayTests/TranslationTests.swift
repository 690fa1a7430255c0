import SluiceCore
import SluiceRelay
import Testing

/// Sluice's translation layer between the OpenAI and Anthropic formats; the suites below are nested here so that
/// `--filter TranslationTests` runs them all.
@Suite struct TranslationTests {}

// MARK: - Helpers

extension TranslationTests {
    static func json(_ text: String) throws -> JSON { try JSON.parse(text) }

    /// The events a parser yields for `wire` when it arrives in pieces of `size` bytes.
    static func events(fromWire wire: String, pieceSize size: Int = .max) -> [SSEEvent] {
        var parser = SSEParser()
        let bytes = Array(wire.utf8)
        var result: [SSEEvent] = []
        var start = 0
        while start < bytes.count {
            let end = min(bytes.count, start + size)
            result += parser.feed(bytes[start..<end])
            start = end
        }
        return result + parser.finish()
    }

    static func translateAll(_ upstream: [SSEEvent], _ translator: inout OpenAIToAnthropicStream, finish: Bool = true) -> [SSEEvent] {
        var out: [SSEEvent] = []
        for event in upstream { out += translator.translate(event) }
        if finish { out += translator.finish() }
        return out
    }

    static func translateAll(_ upstream: [SSEEvent], _ translator: inout AnthropicToOpenAIStream, finish: Bool = true) -> [SSEEvent] {
        var out: [SSEEvent] = []
        for event in upstream { out += translator.translate(event) }
        if finish { out += translator.finish() }
        return out
    }

    /// Rebuilds the message from an Anthropic event stream the way a client library does, checking the event order
    /// rules on the way: message_start first, blocks started in index order and one at a time, deltas only to an open
    /// block of the right kind, message_delta after the last block, message_stop last.
    static func assembleAnthropic(_ stream: [SSEEvent]) throws -> JSON {
        var message: JSON = .null
        var blocks: [JSON] = []
        var partialJSON: [Int: String] = [:]
        var open: Int?
        var stopped = false
        for (position, event) in stream.enumerated() {
            let data = try JSON.parse(event.data)
            #expect(data["type"].string == event.event, "event name and data type differ at \(position)")
            #expect(!stopped, "event after message_stop")
            let index = data["index"].int ?? -1
            switch event.event {
            case "message_start":
                #expect(position == 0)
                message = data["message"]
                #expect(message["content"] == .array([]))
            case "content_block_start":
                #expect(open == nil, "block \(index) opened while \(open ?? -1) is open")
                #expect(index == blocks.count, "blocks must start in index order")
                blocks.append(data["content_block"])
                open = index
            case "content_block_delta":
                #expect(open == index, "delta to a block that is not open")
                guard blocks.indices.contains(index) else { continue }
                let delta = data["delta"]
                switch delta["type"].string {
                case "text_delta":
                    #expect(blocks[index]["type"].string == "text")
                    blocks[index]["text"] = .string((blocks[index]["text"].string ?? "") + (delta["text"].string ?? ""))
                case "thinking_delta":
                    #expect(blocks[index]["type"].string == "thinking")
                    blocks[index]["thinking"] = .string((blocks[index]["thinking"].string ?? "") + (delta["thinking"].string ?? ""))
                case "input_json_delta":
                    #expect(blocks[index]["type"].string == "tool_use")
                    partialJSON[index, default: ""] += delta["partial_json"].string ?? ""
                default:
                    Issue.record("unknown delta \(delta.text)")
                }
            case "content_block_stop":
                #expect(open == index)
                open = nil
                if let text = partialJSON[index] { blocks[index]["input"] = try JSON.parse(text) }
            case "message_delta":
                #expect(open == nil, "message_delta while a block is open")
                message["stop_reason"] = data["delta"]["stop_reason"]
                message["stop_sequence"] = data["delta"]["stop_sequence"]
                for (key, value) in data["usage"].object ?? [] { message["usage"][key] = value }
            case "message_stop":
                stopped = true
            case "ping":
                break
            default:
                Issue.record("unexpected event \(event.event ?? "nil")")
            }
        }
        #expect(stopped, "no message_stop")
        message["content"] = .array(blocks)
        return message
    }

    /// What an OpenAI client library rebuilds from a chunk stream.
    struct AssembledCompletion {
        var content = ""
        var reasoning = ""
        var toolCalls: [JSON] = []
        var finishReason: String?
        var usage: JSON = .null
        var ids: Set<String> = []
    }

    /// Rebuilds an OpenAI completion from chunks, checking the rules: no event names, the role chunk first, one finish
    /// chunk, the usage chunk (empty choices) after it, `[DONE]` last.
    static func assembleOpenAI(_ stream: [SSEEvent]) throws -> AssembledCompletion {
        var result = AssembledCompletion()
        var done = false
        for (position, event) in stream.enumerated() {
            #expect(event.event == nil)
            #expect(!done, "event after [DONE]")
            if event.data == "[DONE]" { done = true; continue }
            let chunk = try JSON.parse(event.data)
            #expect(chunk["object"].string == "chat.completion.chunk")
            #expect(chunk["created"].int != nil)
            if let id = chunk["id"].string { result.ids.insert(id) }
            if !chunk["usage"].isNull {
                #expect(chunk["choices"] == .array([]))
                #expect(result.finishReason != nil, "usage before the finish chunk")
                result.usage = chunk["usage"]
                continue
            }
            let choice = chunk["choices"][0]
            #expect(choice["index"].int == 0)
            let delta = choice["delta"]
            if position == 0 {
                #expect(delta["role"].string == "assistant")
            } else {
                #expect(delta["role"].isNull)
            }
            #expect(result.finishReason == nil, "chunk after the finish chunk")
            result.content += delta["content"].string ?? ""
            result.reasoning += delta["reasoning_content"].string ?? ""
            for call in delta["tool_calls"].array ?? [] {
                let index = try #require(call["index"].int)
                if index == result.toolCalls.count {
                    #expect(call["id"].string != nil)
                    #expect(call["type"].string == "function")
                    result.toolCalls.append(call)
                    result.toolCalls[index].remove("index")
                } else {
                    #expect(index < result.toolCalls.count)
                    #expect(call["id"].isNull)
                    let sofar = result.toolCalls[index]["function"]["arguments"].string ?? ""
                    result.toolCalls[index]["function"]["arguments"] = .string(sofar + (call["function"]["arguments"].string ?? ""))
                }
            }
            if let reason = choice["finish_reason"].string { result.finishReason = reason }
        }
        #expect(done, "no [DONE]")
        return result
    }
}

// MARK: - Anthropic request → OpenAI request

extension TranslationTests {
    @Suite struct AnthropicRequestToOpenAITests {
        @Test func systemMultiTurnAndParameters() throws {
            let body = try json(#"""
            {"model":"claude-sonnet-4-5","max_tokens":1024,"system":"You are terse.",
             "messages":[
               {"role":"user","content":"Hi"},
               {"role":"assistant","content":"Hello."},
               {"role":"user","content":[{"type":"text","text":"What is 2+2?","cache_control":{"type":"ephemeral"}}]}],
             "temperature":0.2,"top_p":0.9,"top_k":40,"stop_sequences":["\n\nHuman:","END"],
             "metadata":{"user_id":"user-42"}}
            """#)
            let out = try Translation.anthropicRequestToOpenAI(body)
            let expected = try json(#"""
            {"model":"claude-sonnet-4-5",
             "messages":[
               {"role":"system","content":"You are terse."},
               {"role":"user","content":"Hi"},
               {"role":"assistant","content":"Hello."},
               {"role":"user","content":"What is 2+2?"}],
             "max_tokens":1024,"temperature":0.2,"top_p":0.9,"stop":["\n\nHuman:","END"],"user":"user-42"}
            """#)
            #expect(out == expected)
            #expect(out.text.hasPrefix(#"{"model":"claude-sonnet-4-5","messages":"#))
        }

        @Test func systemBlocksAreJoined() throws {
            let body = try json(#"""
            {"model":"m","max_tokens":10,"system":[{"type":"text","text":"Rule one."},{"type":"text","text":"Rule two.","cache_control":{"type":"ephemeral"}}],
             "messages":[{"role":"user","content":"go"}]}
            """#)
            let out = try Translation.anthropicRequestToOpenAI(body)
            #expect(out["messages"][0] == (try json(#"{"role":"system","content":"Rule one.\nRule two."}"#)))
            #expect(out["messages"].array?.count == 2)
        }

        @Test func streamAsksForUsage() throws {
            let streamed = try Translation.anthropicRequestToOpenAI(try json(#"{"model":"m","max_tokens":5,"stream":true,"messages":[{"role":"user","content":"x"}]}"#))
            #expect(streamed["stream"] == .bool(true))
            #expect(streamed["stream_options"] == (try json(#"{"include_usage":true}"#)))
            let plain = try Translation.anthropicRequestToOpenAI(try json(#"{"model":"m","max_tokens":5,"stream":false,"messages":[{"role":"user","content":"x"}]}"#))
            #expect(plain["stream"] == .bool(false))
            #expect(plain["stream_options"].isNull)
        }

        @Test func imagesBase64AndURL() throws {
            let body = try json(#"""
            {"model":"m","max_tokens":10,"messages":[{"role":"user","content":[
              {"type":"image","source":{"type":"base64","media_type":"image/png","data":"iVBORw0KGgo="}},
              {"type":"image","source":{"type":"url","url":"https://example.com/cat.jpg"}},
              {"type":"text","text":"Compare these."}]}]}
            """#)
            let out = try Translation.anthropicRequestToOpenAI(body)
            let expected = try json(#"""
            {"role":"user","content":[
              {"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0KGgo="}},
              {"type":"image_url","image_url":{"url":"https://example.com/cat.jpg"}},
              {"type":"text","text":"Compare these."}]}
            """#)
            #expect(out["messages"][0] == expected)
        }

        @Test func documents() throws {
            let body = try json(#"""
            {"model":"m","max_tokens":10,"messages":[{"role":"user","content":[
              {"type":"document","source":{"type":"base64","media_type":"application/pdf","data":"JVBERi0="},"title":"report.pdf"},
              {"type":"document","source":{"type":"text","media_type":"text/plain","data":"plain words"}},
              {"type":"text","text":"Summarize."}]}]}
            """#)
            let content = try Translation.anthropicRequestToOpenAI(body)["messages"][0]["content"]
            #expect(content[0] == (try json(#"{"type":"file","file":{"filename":"report.pdf","file_data":"data:application/pdf;base64,JVBERi0="}}"#)))
            #expect(content[1] == (try json(#"{"type":"text","text":"plain words"}"#)))
        }

        @Test func toolUseAndToolResults() throws {
            let body = try json(#"""
            {"model":"m","max_tokens":100,"messages":[
              {"role":"user","content":"Weather in Paris and Rome?"},
              {"role":"assistant","content":[
                {"type":"thinking","thinking":"I should call the tool.","signature":"abc"},
                {"type":"text","text":"Let me check."},
                {"type":"tool_use","id":"toolu_01","name":"get_weather","input":{"city":"Paris"}},
                {"type":"tool_use","id":"toolu_02","name":"get_weather","input":{"city":"Rome"}}]},
              {"role":"user","content":[
                {"type":"tool_result","tool_use_id":"toolu_01","content":"18°C, cloudy"},
                {"type":"tool_result","tool_use_id":"toolu_02","content":[{"type":"text","text":"City not found"}],"is_error":true},
                {"type":"text","text":"Thanks!"}]},
              {"role":"assistant","content":[{"type":"tool_use","id":"toolu_03","name":"noop","input":{}}]},
              {"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_03"}]}]}
            """#)
            let messages = try #require(try Translation.anthropicRequestToOpenAI(body)["messages"].array)
            let expected = try json(#"""
            [{"role":"user","content":"Weather in Paris and Rome?"},
             {"role":"assistant","content":"Let me check.","tool_calls":[
               {"id":"toolu_01","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}},
               {"id":"toolu_02","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Rome\"}"}}]},
             {"role":"tool","tool_call_id":"toolu_01","content":"18°C, cloudy"},
             {"role":"tool","tool_call_id":"toolu_02","content":"Error: City not found"},
             {"role":"user","content":"Thanks!"},
             {"role":"assistant","content":null,"tool_calls":[{"id":"toolu_03","type":"function","function":{"name":"noop","arguments":"{}"}}]},
             {"role":"tool","tool_call_id":"toolu_03","content":""}]
            """#)
            #expect(JSON.array(messages) == expected)
        }

        @Test func imageInsideToolResultFollowsAsUserContent() throws {
            let body = try json(#"""
            {"model":"m","max_tokens":10,"messages":[
              {"role":"assistant","content":[{"type":"tool_use","id":"t1","name":"screenshot","input":{}}]},
              {"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","content":[
                {"type":"text","text":"captured"},
                {"type":"image","source":{"type":"base64","media_type":"image/jpeg","data":"/9j/"}}]}]}]}
            """#)
            let messages = try Translation.anthropicRequestToOpenAI(body)["messages"]
            #expect(messages[1] == (try json(#"{"role":"tool","tool_call_id":"t1","content":"captured"}"#)))
            #expect(messages[2] == (try json(#"{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/jpeg;base64,/9j/"}}]}"#)))
        }

        @Test func toolsAndServerToolsAndParallelism() throws {
            let body = try json(#"""
            {"model":"m","max_tokens":10,"messages":[{"role":"user","content":"x"}],
             "tools":[
               {"name":"get_weather","description":"Current weather","input_schema":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}},
               {"type":"custom","name":"ping","input_schema":{"type":"object","properties":{}}},
               {"type":"web_search_20250305","name":"web_search","max_uses":3}],
             "tool_choice":{"type":"any","disable_parallel_tool_use":true}}
            """#)
            let out = try Translation.anthropicRequestToOpenAI(body)
            let expected = try json(#"""
            [{"type":"function","function":{"name":"get_weather","description":"Current weather","parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}},
             {"type":"function","function":{"name":"ping","parameters":{"type":"object","properties":{}}}}]
            """#)
            #expect(out["tools"] == expected)
            #expect(out["tool_choice"] == .string("required"))
            #expect(out["parallel_tool_calls"] == .bool(false))
        }

        @Test(arguments: [
            (#"{"type":"auto"}"#, #""auto""#),
            (#"{"type":"any"}"#, #""required""#),
            (#"{"type":"none"}"#, #""none""#),
            (#"{"type":"tool","name":"get_weather"}"#, #"{"type":"function","function":{"name":"get_weather"}}"#),
        ])
        func toolChoice(_ choice: String, _ expected: String) throws {
            let body = try json(#"{"model":"m","max_tokens":10,"messages":[{"role":"user","content":"x"}],"tools":[{"name":"get_weather","input_schema":{"type":"object"}}],"tool_choice":"# + choice + "}")
            let out = try Translation.anthropicRequestToOpenAI(body)
            #expect(out["tool_choice"] == (try json(expected)))
            #expect(out["parallel_tool_calls"].isNull)
        }

        @Test func noToolsMeansNoToolChoice() throws {
            let body = try json(#"{"model":"m","max_tokens":10,"messages":[{"role":"user","content":"x"}],"tool_choice":{"type":"auto"}}"#)
            let out = try Translation.anthropicRequestToOpenAI(body)
            #expect(out["tools"].isNull)
            #expect(out["tool_choice"].isNull)
        }

        @Test(arguments: [
            #"[1,2]"#,
            #""hello""#,
            #"{"model":"m","max_tokens":10}"#,
            #"{"model":"m","messages":{"role":"user"}}"#,
            #"{"model":"m","messages":["hi"]}"#,
            #"{"model":"m","messages":[{"role":"system","content":"x"}]}"#,
            #"{"model":"m","messages":[{"content":"x"}]}"#,
            #"{"model":"m","messages":[{"role":"user","content":42}]}"#,
            #"{"model":"m","messages":[{"role":"user","content":["text"]}]}"#,
            #"{"model":"m","messages":[{"role":"user","content":[{"type":"text"}]}]}"#,
            #"{"model":"m","messages":[{"role":"user","content":[{"type":"image","source":{"type":"file","file_id":"f"}}]}]}"#,
            #"{"model":"m","messages":[{"role":"user","content":[{"type":"tool_result","content":"x"}]}]}"#,
            #"{"model":"m","messages":[{"role":"assistant","content":[{"type":"tool_use","input":{}}]}]}"#,
            #"{"model":"m","system":42,"messages":[{"role":"user","content":"x"}]}"#,
            #"{"model":"m","system":[{"type":"image"}],"messages":[{"role":"user","content":"x"}]}"#,
            #"{"model":"m","messages":[{"role":"user","content":"x"}],"tools":{"name":"x"}}"#,
            #"{"model":"m","messages":[{"role":"user","content":"x"}],"tools":[{"input_schema":{}}]}"#,
            #"{"model":"m","messages":[{"role":"user","content":"x"}],"tools":[{"name":"t","input_schema":{}}],"tool_choice":{"type":"sometimes"}}"#,
            #"{"model":"m","messages":[{"role":"user","content":"x"}],"tools":[{"name":"t","input_schema":{}}],"tool_choice":{"type":"tool"}}"#,
        ])
        func malformedBodiesAreRefused(_ text: String) throws {
            let body = try json(text)
            let error = #expect(throws: RelayError.self) { try Translation.anthropicRequestToOpenAI(body) }
            #expect(error?.status == 400)
            #expect(error?.type == "invalid_request_error")
        }
    }
}

// MARK: - OpenAI request → Anthropic request

extension TranslationTests {
    @Suite struct OpenAIRequestToAnthropicTests {
        @Test func systemDeveloperAndMultiTurn() throws {
            let body = try json(#"""
            {"model":"gpt-4o","messages":[
              {"role":"system","content":"You are terse."},
              {"role":"developer","content":[{"type":"text","text":"Answer in French."}]},
              {"role":"user","content":"Hi"},
              {"role":"assistant","content":"Bonjour."},
              {"role":"user","content":[{"type":"text","text":"2+2?"}]}],
             "max_tokens":256,"temperature":0.3,"top_p":0.8,"stop":"END","user":"user-42","stream":true,
             "stream_options":{"include_usage":true},"frequency_penalty":0.5,"seed":7}
            """#)
            let out = try Translation.openAIRequestToAnthropic(body, defaultMaxTokens: 4096)
            let expected = try json(#"""
            {"model":"gpt-4o",
             "system":[{"type":"text","text":"You are terse."},{"type":"text","text":"Answer in French."}],
             "messages":[
               {"role":"user","content":"Hi"},
               {"role":"assistant","content":"Bonjour."},
               {"role":"user","content":"2+2?"}],
             "max_tokens":256,"stop_sequences":["END"],"temperature":0.3,"top_p":0.8,
             "metadata":{"user_id":"user-42"},"stream":true}
            """#)
            #expect(out == expected)
        }

        @Test func singleSystemMessageIsAString() throws {
            let body = try json(#"{"model":"m","messages":[{"role":"system","content":"Be kind."},{"role":"user","content":"hi"}]}"#)
            let out = try Translation.openAIRequestToAnthropic(body, defaultMaxTokens: 100)
            #expect(out["system"] == .string("Be kind."))
            #expect(out["messages"] == (try json(#"[{"role":"user","content":"hi"}]"#)))
        }

        @Test func consecutiveSameRoleMessagesAreMerged() throws {
            let body = try json(#"""
            {"model":"m","messages":[
              {"role":"user","content":"first"},
              {"role":"user","content":"second"},
              {"role":"assistant","content":"one"},
              {"role":"assistant","content":""},
              {"role":"assistant","content":"two"},
              {"role":"user","content":""},
              {"role":"user","content":"third"}]}
            """#)
            let out = try Translation.openAIRequestToAnthropic(body, defaultMaxTokens: 100)
            let expected = try json(#"""
            [{"role":"user","content":[{"type":"text","text":"first"},{"type":"text","text":"second"}]},
             {"role":"assistant","content":[{"type":"text","text":"one"},{"type":"text","text":"two"}]},
             {"role":"user","content":"third"}]
            """#)
            #expect(out["messages"] == expected)
        }

        @Test func images() throws {
            let body = try json(#"""
            {"model":"m","messages":[{"role":"user","content":[
              {"type":"text","text":"What is in these?"},
              {"type":"image_url","image_url":{"url":"data:image/jpeg;base64,/9j/4AAQ","detail":"high"}},
              {"type":"image_url","image_url":{"url":"https://example.com/dog.png"}},
              {"type":"file","file":{"filename":"a.pdf","file_data":"data:application/pdf;base64,JVBERi0="}}]}]}
            """#)
            let out = try Translation.openAIRequestToAnthropic(body, defaultMaxTokens: 100)
            let expected = try json(#"""
            [{"role":"user","content":[
              {"type":"text","text":"What is in these?"},
              {"type":"image","source":{"type":"base64","media_type":"image/jpeg","data":"/9j/4AAQ"}},
              {"type":"image","source":{"type":"url","url":"https://example.com/dog.png"}},
              {"type":"document","source":{"type":"base64","media_type":"application/pdf","data":"JVBERi0="}}]}]
            """#)
            #expect(out["messages"] == expected)
        }

        @Test func toolCallsAndToolResults() throws {
            let body = try json(#"""
            {"model":"m","messages":[
              {"role":"user","content":"Weather in Paris and Rome?"},
              {"role":"assistant","content":null,"tool_calls":[
                {"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}},
                {"id":"call_2","type":"function","function":{"name":"get_weather","arguments":""}}]},
              {"role":"tool","tool_call_id":"call_1","content":"18°C"},
              {"role":"tool","tool_call_id":"call_2","content":[{"type":"text","text":"22°C"}]},
              {"role":"user","content":"And tomorrow?"},
              {"role":"assistant","content":"Checking.","tool_calls":[{"id":"call_3","type":"function","function":{"name":"forecast","arguments":"not json"}}]}]}
            """#)
            let out = try Translation.openAIRequestToAnthropic(body, defaultMaxTokens: 100)
            let expected = try json(#"""
            [{"role":"user","content":"Weather in Paris and Rome?"},
             {"role":"assistant","content":[
               {"type":"tool_use","id":"call_1","name":"get_weather","input":{"city":"Paris"}},
               {"type":"tool_use","id":"call_2","name":"get_weather","input":{}}]},
             {"role":"user","content":[
               {"type":"tool_result","tool_use_id":"call_1","content":"18°C"},
               {"type":"tool_result","tool_use_id":"call_2","content":"22°C"},
               {"type":"text","text":"And tomorrow?"}]},
             {"role":"assistant","content":[
               {"type":"text","text":"Checking."},
               {"type":"tool_use","id":"call_3","name":"forecast","input":{}}]}]
            """#)
            #expect(out["messages"] == expected)
        }

        @Test func toolResultsOpenTheUserTurn() throws {
            let body = try json(#"""
            {"model":"m","messages":[
              {"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{}"}}]},
              {"role":"user","content":"note first"},
              {"role":"tool","tool_call_id":"c","content":"done"}]}
            """#)
            let out = try Translation.openAIRequestToAnthropic(body, defaultMaxTokens: 100)
            #expect(out["messages"][1]["content"][0]["type"] == .string("tool_result"))
            #expect(out["messages"][1]["content"][1]["text"] == .string("note first"))
        }

        @Test func toolsChoiceAndParallelism() throws {
            let body = try json(#"""
            {"model":"m","messages":[{"role":"user","content":"x"}],
             "tools":[
               {"type":"function","function":{"name":"get_weather","description":"Weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}},"strict":true}},
               {"type":"function","function":{"name":"now"}}],
             "tool_choice":"required","parallel_tool_calls":false}
            """#)
            let out = try Translation.openAIRequestToAnthropic(body, defaultMaxTokens: 100)
            let expected = try json(#"""
            [{"name":"get_weather","description":"Weather","input_schema":{"type":"object","properties":{"city":{"type":"string"}}}},
             {"name":"now","input_schema":{"type":"object","properties":{}}}]
            """#)
            #expect(out["tools"] == expected)
            #expect(out["tool_choice"] == (try json(#"{"type":"any","disable_parallel_tool_use":true}"#)))
        }

        @Test(arguments: [
            (#""auto""#, #"{"type":"auto"}"#),
            (#""required""#, #"{"type":"any"}"#),
            (#""none""#, #"{"type":"none"}"#),
            (#"{"type":"function","function":{"name":"f"}}"#, #"{"type":"tool","name":"f"}"#),
        ])
        func toolChoice(_ choice: String, _ expected: String) throws {
            let body = try json(#"{"model":"m","messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":"# + choice + "}")
            #expect(try Translation.openAIRequestToAnthropic(body, defaultMaxTokens: 1)["tool_choice"] == (try json(expected)))
        }

        @Test func parallelOffWithoutChoice() throws {
            let body = try json(#"{"model":"m","messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"f"}}],"parallel_tool_calls":false}"#)
            #expect(try Translation.openAIRequestToAnthropic(body, defaultMaxTokens: 1)["tool_choice"] == (try json(#"{"type":"auto","disable_parallel_tool_use":true}"#)))
        }

        @Test(arguments: [
            (#""max_completion_tokens":300,"max_tokens":200,"#, 300),
            (#""max_tokens":200,"#, 200),
            ("", 8192),
        ])
        func maxTokens(_ fields: String, _ expected: Int) throws {
            let body = try json(#"{"model":"m","# + fields + #""messages":[{"role":"user","content":"x"}]}"#)
            #expect(try Translation.openAIRequestToAnthropic(body, defaultMaxTokens: 8192)["max_tokens"].int == expected)
        }

        @Test func stopTemperatureAndStream() throws {
            let body = try json(#"{"model":"m","messages":[{"role":"user","content":"x"}],"stop":["@@@","  ","STOP"],"temperature":1.7,"stream":false}"#)
            let out = try Translation.openAIRequestToAnthropic(body, defaultMaxTokens: 1)
            #expect(out["stop_sequences"] == (try json(#"["@@@","STOP"]"#)))
            #expect(out["temperature"].double == 1)
            #expect(out["stream"] == .bool(false))
            let cold = try Translation.openAIRequestToAnthropic(try json(#"{"messages":[{"role":"user","content":"x"}],"temperature":0}"#), defaultMaxTokens: 1)
            #expect(cold["temperature"].double == 0)
            #expect(cold["stop_sequences"].isNull)
            #expect(cold["model"].isNull)
        }

        @Test(arguments: [
            #"[]"#,
            #"null"#,
            #"{"model":"m"}"#,
            #"{"model":"m","messages":"hi"}"#,
            #"{"model":"m","messages":[42]}"#,
            #"{"model":"m","messages":[{"role":"wizard","content":"x"}]}"#,
            #"{"model":"m","messages":[{"content":"x"}]}"#,
            #"{"model":"m","messages":[{"role":"user","content":{"text":"x"}}]}"#,
            #"{"model":"m","messages":[{"role":"user","content":[{"type":"text"}]}]}"#,
            #"{"model":"m","messages":[{"role":"user","content":[{"type":"video","video":{}}]}]}"#,
            #"{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"ftp://x/y.png"}}]}]}"#,
            #"{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png,rawbytes"}}]}]}"#,
            #"{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{}}]}]}"#,
            #"{"model":"m","messages":[{"role":"user","content":[{"type":"input_audio","input_audio":{"data":"AAA","format":"wav"}}]}]}"#,
            #"{"model":"m","messages":[{"role":"user","content":[{"type":"file","file":{"file_id":"file-abc"}}]}]}"#,
            #"{"model":"m","messages":[{"role":"tool","content":"x"}]}"#,
            #"{"model":"m","messages":[{"role":"system","content":[{"type":"image_url"}]}]}"#,
            #"{"model":"m","messages":[{"role":"assistant","content":7}]}"#,
            #"{"model":"m","messages":[{"role":"assistant","tool_calls":[{"type":"function","function":{"name":"f"}}]}]}"#,
            #"{"model":"m","messages":[{"role":"user","content":"x"}],"n":2}"#,
            #"{"model":"m","messages":[{"role":"user","content":"x"}],"tools":"f"}"#,
            #"{"model":"m","messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{}}]}"#,
            #"{"model":"m","messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":"sometimes"}"#,
        ])
        func malformedBodiesAreRefused(_ text: String) throws {
            let body = try json(text)
            let error = #expect(throws: RelayError.self) { try Translation.openAIRequestToAnthropic(body, defaultMaxTokens: 100) }
            #expect(error?.status == 400)
            #expect(error?.code == "invalid_request_error")
        }
    }
}

// MARK: - Responses

extension TranslationTests {
    @Suite struct ResponseTests {
        @Test func openAITextToAnthropic() throws {
            let body = try json(#"""
            {"id":"chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG","object":"chat.completion","created":1741570283,"model":"gpt-4o-2024-08-06",
             "choices":[{"index":0,"message":{"role":"assistant","content":"Hello! How can I help?","refusal":null,"annotations":[]},"logprobs":null,"finish_reason":"stop"}],
             "usage":{"prompt_tokens":19,"completion_tokens":10,"total_tokens":29,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0}},
             "service_tier":"default","system_fingerprint":"fp_fc9f1d7035"}
            """#)
            let out = Translation.openAIResponseToAnthropic(body, model: "claude-via-openai")
            let expected = try json(#"""
            {"id":"chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG","type":"message","role":"assistant","model":"claude-via-openai",
             "content":[{"type":"text","text":"Hello! How can I help?"}],
             "stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":19,"output_tokens":10}}
            """#)
            #expect(out == expected)
        }

        @Test func openAIToolCallsToAnthropic() throws {
            let body = try json(#"""
            {"id":"chatcmpl-1","object":"chat.completion","model":"gpt-4o",
             "choices":[{"index":0,"message":{"role":"assistant","content":"Checking both.","tool_calls":[
               {"id":"call_a","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}},
               {"id":"call_b","type":"function","function":{"name":"get_weather","arguments":"{broken"}}]},"finish_reason":"tool_calls"}],
             "usage":{"prompt_tokens":100,"completion_tokens":30,"total_tokens":130,"prompt_tokens_details":{"cached_tokens":64}}}
            """#)
            let out = Translation.openAIResponseToAnthropic(body, model: "m")
            let expected = try json(#"""
            [{"type":"text","text":"Checking both."},
             {"type":"tool_use","id":"call_a","name":"get_weather","input":{"city":"Paris"}},
             {"type":"tool_use","id":"call_b","name":"get_weather","input":{}}]
            """#)
            #expect(out["content"] == expected)
            #expect(out["stop_reason"] == .string("tool_use"))
            #expect(out["usage"] == (try json(#"{"input_tokens":36,"cache_read_input_tokens":64,"output_tokens":30}"#)))
        }

        @Test func openAIReasoningAndRefusal() throws {
            let reasoning = try json(#"{"id":"x","choices":[{"index":0,"message":{"role":"assistant","content":"42","reasoning_content":"6 times 7."},"finish_reason":"stop"}]}"#)
            let out = Translation.openAIResponseToAnthropic(reasoning, model: "m")
            #expect(out["content"][0] == (try json(#"{"type":"thinking","thinking":"6 times 7.","signature":""}"#)))
            #expect(out["content"][1]["text"] == .string("42"))
            #expect(out["usage"] == (try json(#"{"input_tokens":0,"output_tokens":0}"#)))

            let refusal = try json(#"{"id":"x","choices":[{"index":0,"message":{"role":"assistant","content":null,"refusal":"I can't help with that."},"finish_reason":"content_filter"}]}"#)
            let refused = Translation.openAIResponseToAnthropic(refusal, model: "m")
            #expect(refused["content"] == (try json(#"[{"type":"text","text":"I can't help with that."}]"#)))
            #expect(refused["stop_reason"] == .string("refusal"))
        }

        @Test(arguments: [
            ("stop", "end_turn"), ("length", "max_tokens"), ("tool_calls", "tool_use"), ("function_call", "tool_use"),
            ("content_filter", "refusal"), ("something_new", "end_turn"),
        ])
        func finishReasonToStopReason(_ finish: String, _ stop: String) throws {
            let body = try json(#"{"id":"x","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":""# + finish + #""}]}"#)
            #expect(Translation.openAIResponseToAnthropic(body, model: "m")["stop_reason"] == .string(stop))
        }

        @Test func toolCallsWithStopFinishReasonAreToolUse() throws {
            let body = try json(#"{"choices":[{"index":0,"message":{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{}"}}]},"finish_reason":"stop"}]}"#)
            let out = Translation.openAIResponseToAnthropic(body, model: "m")
            #expect(out["stop_reason"] == .string("tool_use"))
            #expect(out["id"].string?.hasPrefix("msg_") == true)
        }

        @Test func anthropicTextToOpenAI() throws {
            let body = try json(#"""
            {"id":"msg_013Zva2CMHLNnXjNJJKqJ2EF","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929",
             "content":[{"type":"text","text":"Hi! My name is Claude."}],"stop_reason":"end_turn","stop_sequence":null,
             "usage":{"input_tokens":2095,"output_tokens":503,"cache_creation_input_tokens":0,"cache_read_input_tokens":0}}
            """#)
            var out = Translation.anthropicResponseToOpenAI(body, model: "claude-sonnet")
            #expect(out["created"].int.map { $0 > 1_700_000_000 } == true)
            out.remove("created")
            let expected = try json(#"""
            {"id":"msg_013Zva2CMHLNnXjNJJKqJ2EF","object":"chat.completion","model":"claude-sonnet",
             "choices":[{"index":0,"message":{"role":"assistant","content":"Hi! My name is Claude."},"logprobs":null,"finish_reason":"stop"}],
             "usage":{"prompt_tokens":2095,"completion_tokens":503,"total_tokens":2598}}
            """#)
            #expect(out == expected)
        }

        @Test func anthropicToolUseToOpenAI() throws {
            let body = try json(#"""
            {"id":"msg_01","type":"message","role":"assistant","model":"claude",
             "content":[
               {"type":"thinking","thinking":"Need weather.","signature":"EqQB"},
               {"type":"tool_use","id":"toolu_01A","name":"get_weather","input":{"location":"San Francisco, CA","unit":"celsius"}},
               {"type":"tool_use","id":"toolu_01B","name":"get_time","input":{}}],
             "stop_reason":"tool_use","stop_sequence":null,
             "usage":{"input_tokens":10,"cache_creation_input_tokens":5,"cache_read_input_tokens":100,"output_tokens":40}}
            """#)
            let out = Translation.anthropicResponseToOpenAI(body, model: "m")
            let message = out["choices"][0]["message"]
            let expected = try json(#"""
            {"role":"assistant","content":null,"reasoning_content":"Need weather.","tool_calls":[
              {"id":"toolu_01A","type":"function","function":{"name":"get_weather","arguments":"{\"location\":\"San Francisco, CA\",\"unit\":\"celsius\"}"}},
              {"id":"toolu_01B","type":"function","function":{"name":"get_time","arguments":"{}"}}]}
            """#)
            #expect(message == expected)
            #expect(out["choices"][0]["finish_reason"] == .string("tool_calls"))
            #expect(out["usage"] == (try json(#"{"prompt_tokens":115,"completion_tokens":40,"total_tokens":155,"prompt_tokens_details":{"cached_tokens":100}}"#)))
        }

        @Test func anthropicTextBlocksAreConcatenated() throws {
            let body = try json(#"{"id":"m","content":[{"type":"text","text":"The answer "},{"type":"text","text":"is 4.","citations":[]}],"stop_reason":"stop_sequence","stop_sequence":"END"}"#)
            let out = Translation.anthropicResponseToOpenAI(body, model: "m")
            #expect(out["choices"][0]["message"]["content"] == .string("The answer is 4."))
            #expect(out["choices"][0]["finish_reason"] == .string("stop"))
            let empty = Translation.anthropicResponseToOpenAI(try json(#"{"id":"m","content":[],"stop_reason":"end_turn"}"#), model: "m")
            #expect(empty["choices"][0]["message"]["content"] == .string(""))
        }

        @Test(arguments: [
            ("end_turn", "stop"), ("stop_sequence", "stop"), ("max_tokens", "length"), ("tool_use", "tool_calls"),
            ("refusal", "content_filter"), ("pause_turn", "stop"), ("model_context_window_exceeded", "length"),
        ])
        func stopReasonToFinishReason(_ stop: String, _ finish: String) throws {
            let body = try json(#"{"id":"m","content":[{"type":"text","text":"x"}],"stop_reason":""# + stop + #""}"#)
            #expect(Translation.anthropicResponseToOpenAI(body, model: "m")["choices"][0]["finish_reason"] == .string(finish))
        }
    }
}

// MARK: - Errors

extension TranslationTests {
    @Suite struct ErrorTests {
        @Test(arguments: [
            (400, "invalid_request_error"), (401, "authentication_error"), (402, "billing_error"), (403, "permission_error"),
            (404, "not_found_error"), (413, "request_too_large"), (422, "invalid_request_error"), (429, "rate_limit_error"),
            (500, "api_error"), (502, "api_error"), (503, "overloaded_error"), (504, "timeout_error"),
        ])
        func openAIErrorToAnthropicByStatus(_ status: Int, _ type: String) throws {
            let body = try json(#"{"error":{"message":"Something went wrong.","type":"invalid_request_error","param":null,"code":null}}"#)
            let out = Translation.openAIErrorToAnthropic(body, status: status)
            #expect(out == (try json(#"{"type":"error","error":{"type":""# + type + #"","message":"Something went wrong."}}"#)))
        }

        @Test func openAIErrorRealBodies() throws {
            let quota = try json(#"{"error":{"message":"You exceeded your current quota, please check your plan and billing details.","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}"#)
            #expect(Translation.openAIErrorToAnthropic(quota, status: 429)["error"]["type"] == .string("rate_limit_error"))
            #expect(Translation.openAIErrorToAnthropic(quota, status: 200)["error"]["type"] == .string("billing_error"))
            let key = try json(#"{"error":{"message":"Incorrect API key provided: sk-abc***.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}"#)
            let out = Translation.openAIErrorToAnthropic(key, status: 401)
            #expect(out["error"]["message"] == .string("Incorrect API key provided: sk-abc***."))
            #expect(out["error"]["type"] == .string("authentication_error"))
        }

        @Test(arguments: [
            ("rate_limit_exceeded", "requests", "rate_limit_error"),
            ("invalid_api_key", "invalid_request_error", "authentication_error"),
            ("", "invalid_request_error", "invalid_request_error"),
            ("", "server_error", "api_error"),
        ])
        func openAIStreamErrorByType(_ code: String, _ type: String, _ expected: String) throws {
            let body = try json(#"{"error":{"message":"m","type":""# + type + #"","code":""# + code + #""}}"#)
            #expect(Translation.openAIErrorToAnthropic(body, status: 200)["error"]["type"] == .string(expected))
        }

        @Test func oddUpstreamBodies() throws {
            #expect(Translation.openAIErrorToAnthropic(try json(#"{"error":"model overloaded"}"#), status: 503)["error"]["message"] == .string("model overloaded"))
            #expect(Translation.openAIErrorToAnthropic(try json(#"{"message":"Bad gateway"}"#), status: 502)["error"]["message"] == .string("Bad gateway"))
            #expect(Translation.openAIErrorToAnthropic(.string("<html>502</html>"), status: 502)["error"]["message"] == .string("<html>502</html>"))
            let none = Translation.openAIErrorToAnthropic(.null, status: 500)
            #expect(none["error"]["message"] == .string("The upstream service answered with HTTP status 500"))
            let anthropicShaped = Translation.openAIErrorToAnthropic(try json(#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#), status: 529)
            #expect(anthropicShaped == (try json(#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#)))
            let openAIShaped = Translation.anthropicErrorToOpenAI(try json(#"{"detail":"Not Found"}"#), status: 404)
            #expect(openAIShaped["error"]["message"] == .string("Not Found"))
            #expect(openAIShaped["error"]["code"] == .string("not_found"))
        }

        @Test(arguments: [
            ("invalid_request_error", "invalid_request_error", "invalid_request_error"),
            ("authentication_error", "authentication_error", "invalid_api_key"),
            ("permission_error", "permission_error", "permission_denied"),
            ("not_found_error", "invalid_request_error", "not_found"),
            ("request_too_large", "invalid_request_error", "request_too_large"),
            ("rate_limit_error", "rate_limit_error", "rate_limit_exceeded"),
            ("billing_error", "insufficient_quota", "insufficient_quota"),
            ("api_error", "server_error", "server_error"),
            ("overloaded_error", "server_error", "overloaded"),
            ("timeout_error", "server_error", "timeout"),
        ])
        func anthropicErrorToOpenAIByType(_ anthropicType: String, _ type: String, _ code: String) throws {
            let body = try json(#"{"type":"error","error":{"type":""# + anthropicType + #"","message":"Details here."},"request_id":"req_011"}"#)
            let out = Translation.anthropicErrorToOpenAI(body, status: 400)
            #expect(out == (try json(#"{"error":{"message":"Details here.","type":""# + type + #"","code":""# + code + #"","param":null}}"#)))
        }

        @Test(arguments: [
            (401, "authentication_error"), (429, "rate_limit_error"), (404, "invalid_request_error"), (418, "invalid_request_error"),
            (529, "server_error"), (500, "server_error"),
        ])
        func anthropicErrorWithoutTypeUsesStatus(_ status: Int, _ type: String) {
            let out = Translation.anthropicErrorToOpenAI(.null, status: status)
            #expect(out["error"]["type"] == .string(type))
            #expect(out["error"]["message"] == .string("The upstream service answered with HTTP status \(status)"))
        }
    }
}

// MARK: - OpenAI stream → Anthropic stream

extension TranslationTests {
    /// A chunk as OpenAI sends it, with the usual envelope.
    static func openAIChunk(_ choice: String, usage: String = "null") -> String {
        #"data: {"id":"chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT","object":"chat.completion.chunk","created":1741569952,"model":"gpt-4o-2024-08-06","service_tier":"default","system_fingerprint":"fp_f9f4fb6dbf","choices":["#
            + choice + #"],"usage":"# + usage + "}\n\n"
    }

    static func delta(_ delta: String, finish: String = "null") -> String {
        #"{"index":0,"delta":"# + delta + #","logprobs":null,"finish_reason":"# + finish + "}"
    }

    static let openAIUsage = #"{"prompt_tokens":25,"completion_tokens":9,"total_tokens":34,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}"#

    static let openAITextWire =
        openAIChunk(delta(#"{"role":"assistant","content":"","refusal":null}"#))
        + openAIChunk(delta(#"{"content":"Hello"}"#))
        + openAIChunk(delta(#"{"content":" there, "}"#))
        + openAIChunk(delta(#"{"content":"naïve 🌍 friend."}"#))
        + openAIChunk(delta("{}", finish: #""stop""#))
        + #"data: {"id":"chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT","object":"chat.completion.chunk","created":1741569952,"model":"gpt-4o-2024-08-06","service_tier":"default","system_fingerprint":"fp_f9f4fb6dbf","choices":[],"usage":"# + openAIUsage + "}\n\n"
        + "data: [DONE]\n\n"

    static let openAIToolWire =
        openAIChunk(delta(#"{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"call_DdmO9pD3xa9XTPNJ32zg2hcA","type":"function","function":{"name":"get_weather","arguments":""}}],"refusal":null}"#))
        + openAIChunk(delta(#"{"tool_calls":[{"index":0,"function":{"arguments":"{\""}}]}"#))
        + openAIChunk(delta(#"{"tool_calls":[{"index":0,"function":{"arguments":"location"}}]}"#))
        + openAIChunk(delta(#"{"tool_calls":[{"index":0,"function":{"arguments":"\":\"Paris, "}}]}"#))
        + openAIChunk(delta(#"{"tool_calls":[{"index":0,"function":{"arguments":"France\"}"}}]}"#))
        + openAIChunk(delta(#"{"tool_calls":[{"index":1,"id":"call_xyz","type":"function","function":{"name":"get_time","arguments":""}}]}"#))
        + openAIChunk(delta(#"{"tool_calls":[{"index":1,"function":{"arguments":"{\"tz\":\"Europe/Paris\"}"}}]}"#))
        + openAIChunk(delta("{}", finish: #""tool_calls""#))
        + openAIChunk("", usage: #"{"prompt_tokens":80,"completion_tokens":41,"total_tokens":121,"prompt_tokens_details":{"cached_tokens":64}}"#)
        + "data: [DONE]\n\n"

    @Suite struct OpenAIToAnthropicStreamTests {
        @Test func textStreamExactEvents() throws {
            var translator = OpenAIToAnthropicStream(model: "claude-sonnet")
            let out = translateAll(events(fromWire: openAITextWire), &translator)
            #expect(out.map(\.event) == [
                "message_start", "content_block_start", "content_block_delta", "content_block_delta", "content_block_delta",
                "content_block_stop", "message_delta", "message_stop",
            ])
            let data = try out.map { try JSON.parse($0.data) }
            #expect(data[0] == (try json(#"""
            {"type":"message_start","message":{"id":"chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT","type":"message","role":"assistant","model":"claude-sonnet",
             "content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":0,"output_tokens":0}}}
            """#)))
            #expect(data[1] == (try json(#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#)))
            #expect(data[2] == (try json(#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello"}}"#)))
            #expect(data[5] == (try json(#"{"type":"content_block_stop","index":0}"#)))
            #expect(data[6] == (try json(#"{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"input_tokens":25,"output_tokens":9}}"#)))
            #expect(data[7] == (try json(#"{"type":"message_stop"}"#)))
            #expect(out[7].wire == "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n")

            let message = try assembleAnthropic(out)
            #expect(message["content"] == (try json(#"[{"type":"text","text":"Hello there, naïve 🌍 friend."}]"#)))
            #expect(translator.isFinished)
            #expect(translator.promptTokens == 25)
            #expect(translator.completionTokens == 9)
            #expect(translator.hasUsage)
        }

        @Test func toolCallStream() throws {
            var translator = OpenAIToAnthropicStream(model: "m")
            let out = translateAll(events(fromWire: openAIToolWire), &translator)
            let message = try assembleAnthropic(out)
            let expected = try json(#"""
            [{"type":"tool_use","id":"call_DdmO9pD3xa9XTPNJ32zg2hcA","name":"get_weather","input":{"location":"Paris, France"}},
             {"type":"tool_use","id":"call_xyz","name":"get_time","input":{"tz":"Europe/Paris"}}]
            """#)
            #expect(message["content"] == expected)
            #expect(message["stop_reason"] == .string("tool_use"))
            #expect(message["usage"] == (try json(#"{"input_tokens":16,"cache_read_input_tokens":64,"output_tokens":41}"#)))
            #expect(translator.promptTokens == 80)
            let start = try JSON.parse(out[1].data)
            #expect(start == (try json(#"{"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"call_DdmO9pD3xa9XTPNJ32zg2hcA","name":"get_weather","input":{}}}"#)))
            let firstDelta = try JSON.parse(out[2].data)
            #expect(firstDelta == (try json(#"{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"{\""}}"#)))
        }

        @Test func textThenToolCallAndReasoning() throws {
            let wire =
                openAIChunk(delta(#"{"role":"assistant","content":null,"reasoning_content":"The user wants "}"#))
                + openAIChunk(delta(#"{"reasoning_content":"a lookup."}"#))
                + openAIChunk(delta(#"{"content":"Let me look."}"#))
                + openAIChunk(delta(#"{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"search","arguments":"{\"q\":\"swift\"}"}}]}"#, finish: #""tool_calls""#))
                + "data: [DONE]\n\n"
            var translator = OpenAIToAnthropicStream(model: "m")
            let out = translateAll(events(fromWire: wire), &translator)
            let message = try assembleAnthropic(out)
            let expected = try json(#"""
            [{"type":"thinking","thinking":"The user wants a lookup.","signature":""},
             {"type":"text","text":"Let me look."},
             {"type":"tool_use","id":"call_1","name":"search","input":{"q":"swift"}}]
            """#)
            #expect(message["content"] == expected)
            #expect(message["stop_reason"] == .string("tool_use"))
            #expect(message["usage"] == (try json(#"{"input_tokens":0,"output_tokens":0}"#)))
            #expect(!translator.hasUsage)
        }

        @Test(arguments: [1, 2, 3, 7, 64, 1000])
        func eventsSplitAcrossOddChunkBoundaries(_ size: Int) throws {
            var whole = OpenAIToAnthropicStream(model: "m")
            var split = OpenAIToAnthropicStream(model: "m")
            let expected = try assembleAnthropic(translateAll(events(fromWire: openAIToolWire + ""), &whole))
            let out = translateAll(events(fromWire: openAIToolWire.replacingNewlines(withCRLF: size % 2 == 1), pieceSize: size), &split)
            #expect(try assembleAnthropic(out) == expected)

            var text = OpenAIToAnthropicStream(model: "m")
            let textOut = translateAll(events(fromWire: openAITextWire, pieceSize: size), &text)
            #expect(try assembleAnthropic(textOut)["content"][0]["text"] == .string("Hello there, naïve 🌍 friend."))
        }

        @Test func missingDoneIsClosedByFinish() throws {
            let wire = openAIChunk(delta(#"{"role":"assistant","content":"Partial"}"#)) + openAIChunk(delta(#"{"content":" answer"}"#))
            var translator = OpenAIToAnthropicStream(model: "m")
            let beforeFinish = translateAll(events(fromWire: wire), &translator, finish: false)
            #expect(beforeFinish.map(\.event) == ["message_start", "content_block_start", "content_block_delta", "content_block_delta"])
            let closing = translator.finish()
            #expect(closing.map(\.event) == ["content_block_stop", "message_delta", "message_stop"])
            let message = try assembleAnthropic(beforeFinish + closing)
            #expect(message["content"][0]["text"] == .string("Partial answer"))
            #expect(message["stop_reason"] == .string("end_turn"))
            #expect(translator.finish().isEmpty)
            #expect(translator.translate(SSEEvent(data: "[DONE]")).isEmpty)
        }

        @Test func finishReasonWithoutUsageThenDone() throws {
            let wire = openAIChunk(delta(#"{"role":"assistant","content":"Cut"}"#)) + openAIChunk(delta("{}", finish: #""length""#)) + "data: [DONE]\n\n"
            var translator = OpenAIToAnthropicStream(model: "m")
            let out = translateAll(events(fromWire: wire), &translator)
            #expect(out.map(\.event) == ["message_start", "content_block_start", "content_block_delta", "content_block_stop", "message_delta", "message_stop"])
            #expect(try assembleAnthropic(out)["stop_reason"] == .string("max_tokens"))
        }

        @Test func usageOnTheFinishChunk() throws {
            let wire = openAIChunk(delta(#"{"role":"assistant","content":"Hi"}"#))
                + openAIChunk(delta("{}", finish: #""stop""#), usage: #"{"prompt_tokens":7,"completion_tokens":2,"total_tokens":9}"#)
            var translator = OpenAIToAnthropicStream(model: "m")
            let message = try assembleAnthropic(translateAll(events(fromWire: wire), &translator))
            #expect(message["usage"] == (try json(#"{"input_tokens":7,"output_tokens":2}"#)))
        }

        @Test func nothingUpstream() throws {
            var silent = OpenAIToAnthropicStream(model: "m")
            #expect(silent.finish().isEmpty)
            #expect(!silent.hasStarted)

            var onlyDone = OpenAIToAnthropicStream(model: "m")
            let out = onlyDone.translate(SSEEvent(data: "[DONE]"))
            #expect(out.map(\.event) == ["message_start", "message_delta", "message_stop"])
            #expect(try assembleAnthropic(out)["content"] == .array([]))
        }

        @Test func upstreamErrorChunk() throws {
            let wire = openAIChunk(delta(#"{"role":"assistant","content":"Hel"}"#))
                + #"data: {"error":{"message":"The server had an error while processing your request.","type":"server_error","param":null,"code":null}}"# + "\n\n"
            var translator = OpenAIToAnthropicStream(model: "m")
            let out = translateAll(events(fromWire: wire), &translator)
            #expect(out.map(\.event) == ["message_start", "content_block_start", "content_block_delta", "error"])
            #expect(try JSON.parse(out[3].data) == (try json(#"{"type":"error","error":{"type":"api_error","message":"The server had an error while processing your request."}}"#)))
            #expect(translator.isFinished)
            #expect(translator.translate(SSEEvent(data: "[DONE]")).isEmpty)
        }

        @Test func wholeToolCallsInOneChunkAndJunkIgnored() throws {
            let wire = ": keep-alive\n\n"
                + openAIChunk(delta(#"{"role":"assistant","content":"","tool_calls":[{"id":"a","type":"function","function":{"name":"f","arguments":"{\"x\":1}"}},{"id":"b","type":"function","function":{"name":"g","arguments":"{}"}}]}"#, finish: #""stop""#))
                + "data: not json\n\n"
                + "data: [DONE]\n\n"
            var translator = OpenAIToAnthropicStream(model: "m")
            let message = try assembleAnthropic(translateAll(events(fromWire: wire), &translator))
            #expect(message["content"] == (try json(#"[{"type":"tool_use","id":"a","name":"f","input":{"x":1}},{"type":"tool_use","id":"b","name":"g","input":{}}]"#)))
            #expect(message["stop_reason"] == .string("tool_use"))
        }
    }
}

// MARK: - Anthropic stream → OpenAI stream

extension TranslationTests {
    static func anthropicEvent(_ type: String, _ data: String) -> String { "event: \(type)\ndata: \(data)\n\n" }

    static let anthropicTextWire =
        anthropicEvent("message_start", #"{"type":"message_start","message":{"id":"msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY","type":"message","role":"assistant","content":[],"model":"claude-sonnet-4-5-20250929","stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":25,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":1}}}"#)
        + anthropicEvent("content_block_start", #"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#)
        + anthropicEvent("ping", #"{"type": "ping"}"#)
        + anthropicEvent("content_block_delta", #"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello"}}"#)
        + anthropicEvent("content_block_delta", #"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"! Ça va? 🌍"}}"#)
        + anthropicEvent("content_block_stop", #"{"type":"content_block_stop","index":0}"#)
        + anthropicEvent("message_delta", #"{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":15}}"#)
        + anthropicEvent("message_stop", #"{"type":"message_stop"}"#)

    static let anthropicToolWire =
        anthropicEvent("message_start", #"{"type":"message_start","message":{"id":"msg_014p7gG3wDgGV9EUtLvnow3U","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929","stop_sequence":null,"usage":{"input_tokens":472,"cache_read_input_tokens":1000,"output_tokens":2},"content":[],"stop_reason":null}}"#)
        + anthropicEvent("content_block_start", #"{"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":"","signature":""}}"#)
        + anthropicEvent("content_block_delta", #"{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"Need the weather."}}"#)
        + anthropicEvent("content_block_delta", #"{"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"EqQBCgIYAhIM1gbcDa9GJwZA2b3h"}}"#)
        + anthropicEvent("content_block_stop", #"{"type":"content_block_stop","index":0}"#)
        + anthropicEvent("content_block_start", #"{"type":"content_block_start","index":1,"content_block":{"type":"text","text":""}}"#)
        + anthropicEvent("content_block_delta", #"{"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"Okay, let's check."}}"#)
        + anthropicEvent("content_block_stop", #"{"type":"content_block_stop","index":1}"#)
        + anthropicEvent("content_block_start", #"{"type":"content_block_start","index":2,"content_block":{"type":"tool_use","id":"toolu_01T1x1fJ34qAmk2tNTrN7Up6","name":"get_weather","input":{}}}"#)
        + anthropicEvent("content_block_delta", #"{"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":""}}"#)
        + anthropicEvent("content_block_delta", #"{"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"{\"location\":"}}"#)
        + anthropicEvent("content_block_delta", #"{"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":" \"San Francisco, CA\"}"}}"#)
        + anthropicEvent("content_block_stop", #"{"type":"content_block_stop","index":2}"#)
        + anthropicEvent("content_block_start", #"{"type":"content_block_start","index":3,"content_block":{"type":"tool_use","id":"toolu_02","name":"get_time","input":{}}}"#)
        + anthropicEvent("content_block_delta", #"{"type":"content_block_delta","index":3,"delta":{"type":"input_json_delta","partial_json":"{}"}}"#)
        + anthropicEvent("content_block_stop", #"{"type":"content_block_stop","index":3}"#)
        + anthropicEvent("message_delta", #"{"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":89}}"#)
        + anthropicEvent("message_stop", #"{"type":"message_stop"}"#)

    @Suite struct AnthropicToOpenAIStreamTests {
        @Test func textStreamExactChunks() throws {
            var translator = AnthropicToOpenAIStream(model: "claude-sonnet", includeUsage: true)
            let out = translateAll(events(fromWire: anthropicTextWire), &translator)
            #expect(out.count == 6)
            #expect(out.allSatisfy { $0.event == nil })
            var chunks = try out.dropLast().map { try JSON.parse($0.data) }
            let created = chunks[0]["created"]
            for index in chunks.indices {
                #expect(chunks[index]["created"] == created)
                chunks[index].remove("created")
            }
            let envelope = #""id":"msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY","object":"chat.completion.chunk","model":"claude-sonnet""#
            #expect(chunks[0] == (try json("{" + envelope + #","choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}"#)))
            #expect(chunks[1] == (try json("{" + envelope + #","choices":[{"index":0,"delta":{"content":"Hello"},"logprobs":null,"finish_reason":null}]}"#)))
            #expect(chunks[2] == (try json("{" + envelope + #","choices":[{"index":0,"delta":{"content":"! Ça va? 🌍"},"logprobs":null,"finish_reason":null}]}"#)))
            #expect(chunks[3] == (try json("{" + envelope + #","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}]}"#)))
            #expect(chunks[4] == (try json("{" + envelope + #","choices":[],"usage":{"prompt_tokens":25,"completion_tokens":15,"total_tokens":40}}"#)))
            #expect(out[5] == SSEEvent(data: "[DONE]"))
            #expect(out[5].wire == "data: [DONE]\n\n")

            let assembled = try assembleOpenAI(out)
            #expect(assembled.content == "Hello! Ça va? 🌍")
            #expect(assembled.ids.count == 1)
            #expect(translator.promptTokens == 25)
            #expect(translator.completionTokens == 15)
            #expect(translator.isFinished)
        }

        @Test func withoutUsageChunk() throws {
            var translator = AnthropicToOpenAIStream(model: "m", includeUsage: false)
            let out = translateAll(events(fromWire: anthropicTextWire), &translator)
            let assembled = try assembleOpenAI(out)
            #expect(assembled.usage.isNull)
            #expect(assembled.finishReason == "stop")
            #expect(out.count == 5)
            #expect(translator.completionTokens == 15)
        }

        @Test func toolStream() throws {
            var translator = AnthropicToOpenAIStream(model: "m", includeUsage: true)
            let out = translateAll(events(fromWire: anthropicToolWire), &translator)
            let assembled = try assembleOpenAI(out)
            #expect(assembled.reasoning == "Need the weather.")
            #expect(assembled.content == "Okay, let's check.")
            let expected = try json(#"""
            [{"id":"toolu_01T1x1fJ34qAmk2tNTrN7Up6","type":"function","function":{"name":"get_weather","arguments":"{\"location\": \"San Francisco, CA\"}"}},
             {"id":"toolu_02","type":"function","function":{"name":"get_time","arguments":"{}"}}]
            """#)
            #expect(JSON.array(assembled.toolCalls) == expected)
            #expect(assembled.finishReason == "tool_calls")
            #expect(assembled.usage == (try json(#"{"prompt_tokens":1472,"completion_tokens":89,"total_tokens":1561,"prompt_tokens_details":{"cached_tokens":1000}}"#)))
            let toolStart = out.map(\.data).first { $0.contains("toolu_01T1x1fJ34qAmk2tNTrN7Up6") }
            let first = try JSON.parse(try #require(toolStart))["choices"][0]["delta"]
            #expect(first == (try json(#"{"tool_calls":[{"index":0,"id":"toolu_01T1x1fJ34qAmk2tNTrN7Up6","type":"function","function":{"name":"get_weather","arguments":""}}]}"#)))
        }

        @Test(arguments: [1, 2, 5, 13, 100])
        func eventsSplitAcrossOddChunkBoundaries(_ size: Int) throws {
            var whole = AnthropicToOpenAIStream(model: "m", includeUsage: true)
            var split = AnthropicToOpenAIStream(model: "m", includeUsage: true)
            let expected = try assembleOpenAI(translateAll(events(fromWire: anthropicToolWire), &whole))
            let out = try assembleOpenAI(translateAll(events(fromWire: anthropicToolWire.replacingNewlines(withCRLF: size % 2 == 0), pieceSize: size), &split))
            #expect(out.content == expected.content)
            #expect(JSON.array(out.toolCalls) == JSON.array(expected.toolCalls))
            #expect(out.usage == expected.usage)
            #expect(out.finishReason == expected.finishReason)
        }

        @Test func missingMessageStopIsClosedByFinish() throws {
            let wire = anthropicTextWire.components(until: "event: message_delta")
            var translator = AnthropicToOpenAIStream(model: "m", includeUsage: true)
            let beforeFinish = translateAll(events(fromWire: wire), &translator, finish: false)
            #expect(beforeFinish.count == 3)
            let closing = translator.finish()
            #expect(closing.count == 3)
            let assembled = try assembleOpenAI(beforeFinish + closing)
            #expect(assembled.finishReason == "stop")
            #expect(assembled.usage == (try json(#"{"prompt_tokens":25,"completion_tokens":1,"total_tokens":26}"#)))
            #expect(translator.finish().isEmpty)
        }

        @Test func truncatedToolStreamFinishesAsToolCalls() throws {
            let wire = anthropicToolWire.components(until: "event: message_delta")
            var translator = AnthropicToOpenAIStream(model: "m", includeUsage: false)
            let assembled = try assembleOpenAI(translateAll(events(fromWire: wire), &translator))
            #expect(assembled.finishReason == "tool_calls")
            #expect(assembled.toolCalls.count == 2)
        }

        @Test func maxTokensStopReason() throws {
            let wire = anthropicTextWire.replacing(#""stop_reason":"end_turn""#, with: #""stop_reason":"max_tokens""#)
            var translator = AnthropicToOpenAIStream(model: "m", includeUsage: true)
            #expect(try assembleOpenAI(translateAll(events(fromWire: wire), &translator)).finishReason == "length")
        }

        @Test func errorEvent() throws {
            let wire = anthropicTextWire.components(until: "event: content_block_stop")
                + anthropicEvent("error", #"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"},"request_id":"req_011"}"#)
            var translator = AnthropicToOpenAIStream(model: "m", includeUsage: true)
            let out = translateAll(events(fromWire: wire), &translator)
            #expect(out.count == 4)
            #expect(out[3].event == nil)
            #expect(try JSON.parse(out[3].data) == (try json(#"{"error":{"message":"Overloaded","type":"server_error","code":"overloaded","param":null}}"#)))
            #expect(translator.isFinished)
            #expect(translator.translate(SSEEvent(event: "message_stop", data: #"{"type":"message_stop"}"#)).isEmpty)
        }

        @Test func nothingUpstream() {
            var translator = AnthropicToOpenAIStream(model: "m", includeUsage: true)
            #expect(translator.translate(SSEEvent(event: "ping", data: #"{"type":"ping"}"#)).isEmpty)
            #expect(translator.finish().isEmpty)
            #expect(!translator.hasStarted)
        }

        @Test func messageDeltaWithCumulativeInputUsage() throws {
            let wire = anthropicTextWire.replacing(#""usage":{"output_tokens":15}"#, with: #""usage":{"input_tokens":30,"cache_creation_input_tokens":10,"output_tokens":15}"#)
            var translator = AnthropicToOpenAIStream(model: "m", includeUsage: true)
            let assembled = try assembleOpenAI(translateAll(events(fromWire: wire), &translator))
            #expect(assembled.usage == (try json(#"{"prompt_tokens":40,"completion_tokens":15,"total_tokens":55}"#)))
        }
    }
}

// MARK: - Round trips

extension TranslationTests {
    @Suite struct RoundTripTests {
        @Test func anthropicRequestSurvivesTheRoundTrip() throws {
            let original = try json(#"""
            {"model":"m","system":"Be brief.","max_tokens":50,"messages":[
              {"role":"user","content":"Weather?"},
              {"role":"assistant","content":[{"type":"text","text":"Checking."},{"type":"tool_use","id":"t1","name":"weather","input":{"city":"Oslo"}}]},
              {"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","content":"-3°C"},{"type":"text","text":"Warm enough?"}]}],
             "tools":[{"name":"weather","description":"Weather","input_schema":{"type":"object","properties":{"city":{"type":"string"}}}}],
             "tool_choice":{"type":"auto"},"stop_sequences":["END"],"temperature":0.5,"stream":true}
            """#)
            let back = try Translation.openAIRequestToAnthropic(try Translation.anthropicRequestToOpenAI(original), defaultMaxTokens: 1)
            #expect(back == original)
        }

        @Test func streamsRoundTrip() throws {
            // OpenAI upstream → Anthropic events → back to OpenAI chunks: the caller sees the same completion.
            var toAnthropic = OpenAIToAnthropicStream(model: "m")
            let anthropic = translateAll(events(fromWire: openAIToolWire), &toAnthropic)
            var toOpenAI = AnthropicToOpenAIStream(model: "m", includeUsage: true)
            let wire = anthropic.map(\.wire).joined()
            let assembled = try assembleOpenAI(translateAll(events(fromWire: wire, pieceSize: 3), &toOpenAI))
            #expect(assembled.toolCalls.map { $0["function"]["arguments"].string } == [#"{"location":"Paris, France"}"#, #"{"tz":"Europe/Paris"}"#])
            #expect(assembled.finishReason == "tool_calls")
            #expect(assembled.usage["prompt_tokens"].int == 80)
            #expect(assembled.usage["completion_tokens"].int == 41)
        }
    }
}

// MARK: - String helpers for the recorded streams

extension String {
    fileprivate func replacingNewlines(withCRLF: Bool) -> String {
        withCRLF ? split(separator: "\n", omittingEmptySubsequences: false).joined(separator: "\r\n") : self
    }

    /// The text before the first occurrence of `marker`.
    fileprivate func components(until marker: String) -> String {
        guard let range = firstRange(of: marker) else { return self }
        return String(self[..<range.lowerBound])
    }
}
