-- End-to-end check of lsp/starcoder.lua in a real (headless) Neovim 0.12, driven like a user:
-- keys go through nvim_input (the real input queue), so autocmds, mappings and the LSP client
-- behave as they do interactively. Run by tests/test_neovim.py:
--
--   STARCODER_E2E=<params.json> nvim --headless -u <init.lua> -i NONE -c 'luafile e2e.lua'
--
-- params.json: { file, fallback_file, out, line (1-based), expect, max_accepts, deadline and
-- *_timeout (seconds) }.
-- Writes a JSON report to `out` and quits; every wait is time-bounded.
local api = vim.api
local params = vim.json.decode(assert(io.open(assert(os.getenv('STARCODER_E2E')))):read('*a'))
local report = { statuses = {}, events = {} }
local T0 = vim.uv.hrtime()

local function now_s()
  return (vim.uv.hrtime() - T0) / 1e9
end

local function event(fmt, ...)
  local line = string.format('%7.2fs ', now_s()) .. string.format(fmt, ...)
  table.insert(report.events, line)
  local f = io.open(params.out .. '.events', 'a') -- progress, readable even if Neovim hangs
  if f then
    f:write(line, '\n')
    f:close()
  end
end

local function buf_text(bufnr)
  return table.concat(api.nvim_buf_get_lines(bufnr, 0, -1, false), '\n')
end

local finished = false
local function finish(err)
  if finished then
    return
  end
  finished = true
  report.error = err
  report.seconds = now_s()
  report.messages = api.nvim_exec2('messages', { output = true }).output
  local f = assert(io.open(params.out, 'w'))
  f:write(vim.json.encode(report))
  f:close()
  vim.cmd('qall!')
end

api.nvim_create_autocmd('User', {
  pattern = 'StarcoderStatus',
  callback = function()
    local st = vim.g.starcoder_status or {}
    table.insert(report.statuses, st)
    report.status_changed_at = now_s()
    event('status %s %s', tostring(st.state), tostring(st.message))
  end,
})

-- The command's own result (the markdown), as the default handler would receive it.
local exec_handler = vim.lsp.handlers['workspace/executeCommand']
vim.lsp.handlers['workspace/executeCommand'] = function(err, result, ctx, config)
  report.command_result = result
  report.command_error = err and (err.message or vim.inspect(err)) or nil
  event('executeCommand answered (%s)', err and 'error' or type(result))
  return exec_handler(err, result, ctx, config)
end

-- A user's picker: record what is offered, pick the "Explain" action.
vim.ui.select = function(items, opts, on_choice)
  report.code_actions = {}
  local choice, index
  for i, item in ipairs(items) do
    local action = item.action or item
    table.insert(report.code_actions, { title = action.title, command = action.command })
    if not choice and type(action.title) == 'string' and action.title:match('^Explain') then
      choice, index = item, i
    end
  end
  event('code actions offered: %d', #items)
  on_choice(choice, index)
end

local co
local function resume()
  local ok, err = coroutine.resume(co)
  if not ok then
    finish(debug.traceback(co, err))
  end
end

local function sleep(ms)
  vim.defer_fn(resume, ms)
  coroutine.yield()
end

--- Poll `cond` every 50 ms (the main loop, input included, keeps running) until it is truthy.
local function wait_for(what, seconds, cond)
  local deadline = now_s() + seconds
  while true do
    local value = cond()
    if value then
      event('%s', what)
      return value
    end
    if now_s() > deadline then
      error(string.format('timed out after %ds waiting for: %s', seconds, what), 0)
    end
    sleep(50)
  end
end

--- The ghost text Neovim draws for the current suggestion (what the user sees).
local function ghost_text(bufnr)
  local ns = api.nvim_get_namespaces()['nvim.lsp.inline_completion']
  if not ns then
    return nil
  end
  local parts = {}
  for _, mark in ipairs(api.nvim_buf_get_extmarks(bufnr, ns, 0, -1, { details = true })) do
    local d = mark[4]
    for _, chunk in ipairs(d.virt_text or {}) do
      table.insert(parts, chunk[1])
    end
    for _, line in ipairs(d.virt_lines or {}) do
      local text = {}
      for _, chunk in ipairs(line) do
        table.insert(text, chunk[1])
      end
      table.insert(parts, '\n' .. table.concat(text))
    end
  end
  return #parts > 0 and table.concat(parts) or nil
end

local function starcoder_client(bufnr)
  return vim.lsp.get_clients({ bufnr = bufnr, name = 'starcoder' })[1]
end

local function normalized(text)
  return (text:gsub('%s+', ''))
end

local function main()
  -- 1. Open the file: vim.lsp.enable starts the server; wait until the model is loaded.
  vim.cmd.edit(vim.fn.fnameescape(params.file))
  local bufnr = api.nvim_get_current_buf()
  report.filetype = vim.bo[bufnr].filetype
  local client = wait_for('client attached', 60, function()
    return starcoder_client(bufnr)
  end)
  report.server_capabilities = {
    inline = client.server_capabilities.inlineCompletionProvider ~= nil,
    completion = client.server_capabilities.completionProvider ~= nil,
    code_action = client.server_capabilities.codeActionProvider ~= nil,
    commands = vim.tbl_get(client.server_capabilities, 'executeCommandProvider', 'commands'),
  }
  -- Ready, and still ready a moment later (the server may reload once when the settings that
  -- Neovim pushes after `initialize` arrive during the first load).
  wait_for('model ready', params.ready_timeout, function()
    local st = vim.g.starcoder_status
    if st and st.state == 'error' then
      error('server reported an error: ' .. tostring(st.message), 0)
    end
    return st and st.state == 'ready' and now_s() - (report.status_changed_at or 0) > 1.5
  end)
  report.inline_enabled = vim.lsp.inline_completion.is_enabled({ bufnr = bufnr })
  -- The README's status-line item.
  report.statusline = api.nvim_eval_statusline(params.statusline, {}).str

  -- 2. Insert mode at the end of the function's empty body line; wait for the ghost text and
  --    accept it with the mapped key (<Tab>). A suggestion cut short by the server's time budget
  --    is continued by the next one, as a user would accept again (at most `max_accepts`).
  api.nvim_win_set_cursor(0, { params.line, 0 })
  api.nvim_input('A')
  wait_for('insert mode', 10, function()
    return api.nvim_get_mode().mode == 'i'
  end)
  --    The first suggestion is first accepted by its first word (the word key): the rest must
  --    stay on screen (the server answers it from its cache).
  report.accepts = {}
  for i = 1, params.max_accepts do
    local before = buf_text(bufnr)
    local ghost = wait_for('inline suggestion shown', params.suggestion_timeout, function()
      return ghost_text(bufnr)
    end)
    if i == 1 and params.word_key then
      api.nvim_input(params.word_key)
      wait_for('first word accepted', 10, function()
        return buf_text(bufnr) ~= before
      end)
      local rest = wait_for('the rest of the suggestion shown', params.suggestion_timeout, function()
        local g = ghost_text(bufnr)
        return g and g ~= ghost and g or nil
      end)
      report.word_accept = { ghost = ghost, before = before, after = buf_text(bufnr), rest = rest }
      before, ghost = buf_text(bufnr), rest
    end
    api.nvim_input('<Tab>')
    wait_for('suggestion accepted', 10, function()
      return buf_text(bufnr) ~= before
    end)
    sleep(50)
    table.insert(report.accepts, { ghost = ghost, before = before, after = buf_text(bufnr) })
    if normalized(buf_text(bufnr)):find(params.expect, 1, true) then
      break
    end
  end
  report.accepted_text = buf_text(bufnr)
  api.nvim_input('<Esc>')
  wait_for('normal mode', 10, function()
    return api.nvim_get_mode().mode == 'n'
  end)

  -- 3. The completion fallback (what Neovim 0.11 gets), on a second buffer: <C-Space>, <C-y>.
  if params.fallback_file then
    vim.g.starcoder_inline = false
    vim.cmd.edit(vim.fn.fnameescape(params.fallback_file))
    local fb = api.nvim_get_current_buf()
    wait_for('fallback buffer attached', 30, function()
      return starcoder_client(fb)
    end)
    sleep(100) -- capabilities are set up in a scheduled callback after attach
    report.fallback_inline_enabled = vim.lsp.inline_completion.is_enabled({ bufnr = fb })
    report.first_buffer_inline_enabled = vim.lsp.inline_completion.is_enabled({ bufnr = bufnr })
    local fb_before = buf_text(fb)
    api.nvim_win_set_cursor(0, { params.line, 0 })
    api.nvim_input('A<C-Space>')
    -- (no UI is attached, so pumvisible() stays 0: watch the completion state instead)
    report.fallback_menu = wait_for('completion item offered', params.suggestion_timeout, function()
      local info = vim.fn.complete_info({ 'items', 'selected', 'mode' })
      return #info.items > 0 and info
    end)
    api.nvim_input('<C-y>')
    wait_for('completion accepted', 10, function()
      return api.nvim_get_mode().mode == 'i' and buf_text(fb) ~= fb_before
    end)
    sleep(50)
    report.fallback_text = buf_text(fb)
    api.nvim_input('<Esc>')
    wait_for('normal mode', 10, function()
      return api.nvim_get_mode().mode == 'n'
    end)
    vim.cmd.buffer(bufnr)
  end

  -- 4. Explain the function: a linewise visual selection, then the default code-action key `gra`
  --    (vim.ui.select above picks the "Explain" action).
  local lines = api.nvim_buf_get_lines(bufnr, 0, -1, false)
  local last = 1
  while lines[last + 1] and lines[last + 1] ~= '' do
    last = last + 1
  end
  report.explained_lines = { 1, last }
  api.nvim_win_set_cursor(0, { 1, 0 })
  api.nvim_input(string.format('V%dG', last))
  wait_for('visual selection', 10, function()
    return api.nvim_get_mode().mode == 'V' and api.nvim_win_get_cursor(0)[1] == last
  end)
  api.nvim_input('gra')
  wait_for('code actions listed', 30, function()
    return report.code_actions
  end)
  wait_for('explain command answered', params.explain_timeout, function()
    return report.command_result ~= nil or report.command_error ~= nil
  end)
  report.explanation_document = wait_for('explanation shown', 20, function()
    for _, b in ipairs(api.nvim_list_bufs()) do
      local name = api.nvim_buf_get_name(b)
      if name:match('explanation%-[%x]+%.md$') and api.nvim_buf_is_loaded(b) then
        return { name = name, text = buf_text(b), windows = #vim.fn.win_findbuf(b) }
      end
    end
  end)

  -- 5. Edit with an instruction: the selected lines, the mapped key (`gre`), the instruction
  --    typed into vim.ui.input; the server applies the edit to the buffer.
  if params.edit_file then
    vim.cmd('only')
    vim.cmd.edit(vim.fn.fnameescape(params.edit_file))
    local eb = api.nvim_get_current_buf()
    wait_for('edit buffer attached', 30, function()
      return starcoder_client(eb)
    end)
    sleep(100)
    vim.ui.input = function(opts, on_confirm)
      report.edit_prompt = opts.prompt
      on_confirm(params.edit_instruction)
    end
    local before = buf_text(eb)
    report.edit_before = before
    api.nvim_win_set_cursor(0, { params.edit_lines[1], 0 })
    api.nvim_input(string.format('V%dG', params.edit_lines[2]))
    wait_for('edit selection', 10, function()
      return api.nvim_get_mode().mode == 'V'
    end)
    api.nvim_input('gre')
    report.edited_text = wait_for('edit applied', params.explain_timeout, function()
      return buf_text(eb) ~= before and buf_text(eb)
    end)
  end

  -- 6. :StarcoderStats: the report (with the accepts above) in a scratch markdown buffer.
  vim.cmd('StarcoderStats')
  report.stats_text = wait_for('the stats buffer', 20, function()
    local b = api.nvim_get_current_buf()
    return vim.bo[b].filetype == 'markdown' and buf_text(b):find('Suggestions shown', 1, true)
      and buf_text(b)
  end)
  finish(nil)
end

-- A watchdog: report (and quit) before the test's own timeout kills Neovim.
vim.defer_fn(function()
  finish(string.format('watchdog: the whole run took more than %ds', params.deadline))
end, params.deadline * 1000)
co = coroutine.create(main)
vim.schedule(resume)
