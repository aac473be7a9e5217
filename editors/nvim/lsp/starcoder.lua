-- starcoder-lsp for Neovim 0.11+: local fill-in-the-middle completions, edits that follow an
-- instruction, and "Explain this snippet".
--
-- Put `editors/nvim` on 'runtimepath' (or copy this file to ~/.config/nvim/lsp/starcoder.lua), then:
--
--   vim.opt.runtimepath:append('/path/to/starcoder-lsp/editors/nvim')
--   vim.lsp.config('starcoder', { cmd = { '/path/to/starcoder-lsp/.venv/bin/starcoder-lsp', 'serve' } })
--   vim.lsp.enable('starcoder')
--
-- Neovim 0.12: suggestions appear as ghost text while you type (`vim.lsp.inline_completion`);
-- <Tab> accepts one, and is an ordinary <Tab> (or a snippet jump) when there is none.
-- Neovim 0.11 (no inline completion): <C-Space> in insert mode asks for the suggestion as a
-- completion-menu item; <C-y> inserts all of it, every line.
--
-- Options, read when a buffer attaches (set them before `vim.lsp.enable`):
--   vim.g.starcoder_accept_key   = '<Tab>'      -- accepts the ghost text; false: map nothing
--   vim.g.starcoder_accept_word_key = '<M-Right>'   -- accepts its first word; false: none
--   vim.g.starcoder_accept_line_key = '<M-C-Right>' -- accepts its first line; false: none
--                                               -- (the rest stays on screen: the server answers
--                                               -- it from its cache, without the model)
--   vim.g.starcoder_complete_key = '<C-Space>'  -- the 0.11 fallback's trigger; false: map nothing
--   vim.g.starcoder_inline       = true         -- false: use the completion fallback even on 0.12
--   vim.g.starcoder_edit_key     = 'gre'        -- edit with an instruction (visual: the selected
--                                               -- lines; normal: the block); false: map nothing
-- The server's state ({ state = 'loading'|'ready'|'busy'|'error'|'disabled'|'unloaded', model,
-- message, errors, lastError }) is kept in `vim.g.starcoder_status`, and `User StarcoderStatus`
-- fires on each change (statusline). `errors` > 0: requests failed since they last worked.
-- Settings: the table "Settings" in the project README (camelCase keys), in init_options/settings.

--- `starcoder/status` notification: remember it for the statusline and tell autocmds.
local function on_status(_, result)
  if type(result) ~= 'table' then
    return
  end
  vim.g.starcoder_status = {
    state = result.state, model = result.model, message = result.message,
    errors = tonumber(result.errors) or 0, lastError = result.lastError or '',
  }
  pcall(vim.api.nvim_exec_autocmds, 'User', { pattern = 'StarcoderStatus', modeline = false })
  pcall(vim.cmd.redrawstatus)
end

--- The key's normal meaning, for when there is no suggestion to accept.
local function fallback_keys(key)
  local is_tab = vim.keycode(key) == vim.keycode('<Tab>')
  if is_tab and vim.snippet and vim.snippet.active({ direction = 1 }) then
    return '<Cmd>lua vim.snippet.jump(1)<CR>'
  end
  return key
end

--- The part of a suggestion a partial accept takes: its first word (with the blanks before it,
--- or one symbol), or its first line (a suggestion that starts a new line: that line).
local function first_part(text, what)
  if what == 'word' then
    return text:match('^%s*[%w_]+') or text:match('^%s*%S') or text
  end
  return text:match('^\n?[^\n]*') or text
end

--- Accept part of the ghost text, as VS Code's accept-word / accept-line: only that part is
--- inserted, and the item's accept command is not run (the suggestion is not taken as a whole).
local function accept_part(what)
  return vim.lsp.inline_completion.get({
    on_accept = function(item)
      local text = item.insert_text
      if type(text) ~= 'string' or not item.range then
        return
      end
      local part = first_part(text, what)
      local row, col = item.range.start.row, item.range.start.col
      local lines = vim.split(part, '\n')
      vim.api.nvim_buf_set_text(0, row, col, item.range.end_.row, item.range.end_.col, lines)
      vim.api.nvim_win_set_cursor(0, { row + #lines, (#lines == 1 and col or 0) + #lines[#lines] })
    end,
  })
end

--- Neovim 0.12: ghost text while typing, accepted with `vim.g.starcoder_accept_key`.
--- Enabled only while the buffer is the current one: early 0.12 builds (before neovim PR #35965)
--- fire every buffer's inline-completion autocmds on each keystroke, sending one request per
--- buffer with the *current* cursor position, and the newest request (another buffer's) wins.
local function setup_inline(bufnr)
  local function enable(on)
    pcall(vim.lsp.inline_completion.enable, on, { bufnr = bufnr })
  end
  enable(bufnr == vim.api.nvim_get_current_buf())
  local group = vim.api.nvim_create_augroup('starcoder.inline.' .. bufnr, { clear = true })
  vim.api.nvim_create_autocmd('BufEnter', {
    buffer = bufnr, group = group, callback = function() enable(true) end,
  })
  vim.api.nvim_create_autocmd('BufLeave', {
    buffer = bufnr, group = group, callback = function() enable(false) end,
  })
  local key = vim.g.starcoder_accept_key
  if key == nil then
    key = '<Tab>'
  end
  if not key or key == '' then
    return
  end
  vim.keymap.set('i', key, function()
    if not vim.lsp.inline_completion.get() then
      return fallback_keys(key)
    end
  end, { buffer = bufnr, expr = true, desc = 'starcoder: accept the inline suggestion' })
  for what, default in pairs({ word = '<M-Right>', line = '<M-C-Right>' }) do
    local part_key = vim.g['starcoder_accept_' .. what .. '_key']
    if part_key == nil then
      part_key = default
    end
    if part_key and part_key ~= '' then
      vim.keymap.set('i', part_key, function()
        if not accept_part(what) then
          return part_key
        end
      end, { buffer = bufnr, expr = true, desc = 'starcoder: accept the first ' .. what })
    end
  end
end

--- Neovim 0.11: the suggestion as one completion item (the server's `textDocument/completion`).
--- Neovim inserts only a plain-text item's first word, so on <C-y> the whole text replaces it.
local function setup_completion(client, bufnr)
  vim.lsp.completion.enable(true, client.id, bufnr, { autotrigger = false })
  vim.api.nvim_create_autocmd('CompleteDone', {
    buffer = bufnr,
    group = vim.api.nvim_create_augroup('starcoder.completion.' .. bufnr, { clear = true }),
    callback = function()
      local done = vim.v.completed_item
      local lsp = vim.tbl_get(done or {}, 'user_data', 'nvim', 'lsp') or {}
      local item = lsp.completion_item
      local reason = (vim.v.event or {}).reason
      if not item or not item.textEdit or (reason and reason ~= 'accept') then
        return
      end
      if lsp.client_id ~= client.id and item.detail ~= 'starcoder-lsp' then
        return
      end
      local word = done.word or ''
      local row, col = unpack(vim.api.nvim_win_get_cursor(0))
      local start = col - #word
      if start < 0 or vim.api.nvim_get_current_line():sub(start + 1, col) ~= word then
        return
      end
      local lines = vim.split(item.textEdit.newText, '\n', { plain = true })
      vim.api.nvim_buf_set_text(bufnr, row - 1, start, row - 1, col, lines)
      local last = #lines == 1 and start + #lines[1] or #lines[#lines]
      vim.api.nvim_win_set_cursor(0, { row + #lines - 1, last })
    end,
  })
  local key = vim.g.starcoder_complete_key
  if key == nil then
    key = '<C-Space>'
  end
  if key and key ~= '' then
    vim.keymap.set('i', key, function()
      (vim.lsp.completion.get or vim.lsp.completion.trigger)()
    end, { buffer = bufnr, desc = 'starcoder: ask for a completion' })
  end
end

--- "Edit with StarCoder…": ask for the instruction, then the server rewrites `range` and applies
--- the edit itself (`workspace/applyEdit`, refused if the buffer changed meanwhile): `u` undoes it.
local function edit_range(client, bufnr, range)
  vim.ui.input({ prompt = 'Edit with StarCoder: ' }, function(instruction)
    if not instruction or vim.trim(instruction) == '' then
      return
    end
    client:request('workspace/executeCommand', {
      command = 'starcoder.edit',
      arguments = { vim.uri_from_bufnr(bufnr), range, instruction },
    }, function(err, result)
      if err then
        vim.notify('starcoder: ' .. (err.message or vim.inspect(err)), vim.log.levels.ERROR)
      elseif type(result) == 'table' and not result.applied and result.reason then
        vim.notify('starcoder: ' .. result.reason, vim.log.levels.WARN)
      end
    end, bufnr)
  end)
end

--- `vim.g.starcoder_edit_key` (default `gre`): in visual mode the selected lines, in normal mode
--- the block around the cursor.
local function setup_edit(client, bufnr)
  local key = vim.g.starcoder_edit_key
  if key == nil then
    key = 'gre'
  end
  if not key or key == '' then
    return
  end
  vim.keymap.set('x', key, function()
    local first, last = vim.fn.line('v'), vim.fn.line('.')
    if first > last then
      first, last = last, first
    end
    vim.api.nvim_feedkeys(vim.keycode('<Esc>'), 'nx', false)
    edit_range(client, bufnr, {
      start = { line = first - 1, character = 0 }, ['end'] = { line = last, character = 0 },
    })
  end, { buffer = bufnr, desc = 'starcoder: edit the selected lines with an instruction' })
  vim.keymap.set('n', key, function()
    local line = vim.api.nvim_win_get_cursor(0)[1] - 1
    local here = { line = line, character = 0 }
    edit_range(client, bufnr, { start = here, ['end'] = here })
  end, { buffer = bufnr, desc = 'starcoder: edit the block under the cursor with an instruction' })
end

--- `:StarcoderStats`: this session's completion stats (counted by the server, never sent
--- anywhere) in a scratch markdown buffer.
local function show_stats()
  local client = vim.lsp.get_clients({ name = 'starcoder' })[1]
  if not client then
    vim.notify('starcoder: the server is not running', vim.log.levels.WARN)
    return
  end
  client:request('workspace/executeCommand', { command = 'starcoder.stats', arguments = {} },
    function(err, result)
      if err or type(result) ~= 'string' then
        vim.notify('starcoder: stats: ' .. (err and err.message or 'no report'), vim.log.levels.ERROR)
        return
      end
      vim.cmd('botright new')
      local buf = vim.api.nvim_get_current_buf()
      vim.bo[buf].buftype, vim.bo[buf].bufhidden, vim.bo[buf].swapfile = 'nofile', 'wipe', false
      vim.api.nvim_buf_set_lines(buf, 0, -1, false, vim.split(result, '\n', { trimempty = true }))
      vim.bo[buf].modifiable, vim.bo[buf].filetype = false, 'markdown'
      pcall(vim.api.nvim_buf_set_name, buf, 'StarCoder Stats')
    end)
end

---@type vim.lsp.Config
return {
  cmd = { 'starcoder-lsp', 'serve' },
  filetypes = {
    'bash', 'c', 'cmake', 'cpp', 'cs', 'css', 'cuda', 'dart', 'dockerfile', 'elixir', 'erlang',
    'go', 'haskell', 'html', 'java', 'javascript', 'javascriptreact', 'julia', 'kotlin', 'lua',
    'make', 'nix', 'ocaml', 'perl', 'php', 'python', 'r', 'ruby', 'rust', 'scala',
    'scss', 'sh', 'sql', 'swift', 'terraform', 'toml', 'typescript', 'typescriptreact', 'vim',
    'vue', 'yaml', 'zig', 'zsh',
  },
  -- The project root: the server shows the model repository-relative paths. Without one the
  -- server still starts (single-file mode).
  root_markers = { '.git', '.hg', '.jj', 'pyproject.toml', 'package.json', 'Cargo.toml', 'go.mod' },
  -- One server (one loaded model) for every project and buffer, not one per root.
  reuse_client = function(client, config)
    return client.name == config.name
  end,
  -- Read once, before the model loads (a name from models.toml or a .gguf path; camelCase keys:
  -- model, modelsFile, nGpuLayers, threads, contextTokens, maxTokens, temperature, enable, …).
  -- Avoid empty tables here: Neovim sends `{}` as a JSON array.
  init_options = { model = 'qwen2.5-coder-0.5b' },
  -- The same keys, re-read on every change (`workspace/configuration`, section "starcoder").
  settings = { starcoder = { enable = true } },
  handlers = { ['starcoder/status'] = on_status },
  -- We ask for an edit's instruction ourselves (vim.ui.input): the server then offers
  -- "Edit with StarCoder…" among the code actions, beside the presets (Fix bugs, …).
  capabilities = vim.tbl_deep_extend('force', vim.lsp.protocol.make_client_capabilities(),
    { experimental = { starcoder = { editInput = true } } }),
  commands = {
    ['starcoder.editSelection'] = function(command, ctx)
      local client = vim.lsp.get_client_by_id(ctx.client_id)
      if client and command.arguments then
        edit_range(client, ctx.bufnr, command.arguments[2])
      end
    end,
  },
  on_attach = function(client, bufnr)
    vim.api.nvim_create_user_command('StarcoderStats', show_stats,
      { desc = 'starcoder: completion stats of this session (local only)', force = true })
    setup_edit(client, bufnr)
    local has_inline = pcall(require, 'vim.lsp.inline_completion') -- Neovim 0.12+
    local want_inline = vim.g.starcoder_inline ~= false
    if has_inline and want_inline and client:supports_method('textDocument/inlineCompletion', bufnr) then
      setup_inline(bufnr)
      return
    end
    setup_completion(client, bufnr)
  end,
}
